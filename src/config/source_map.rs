//! Where each node of a YAML document sits, by field path.
//!
//! serde reports type errors with a line and column, but checks made after deserialising (a
//! route naming a missing backend, a duplicate name) only know the field's path. This map,
//! built from the parser's events, turns such a path (`listeners[0].routes[2].backend`) back
//! into the line and column of its value.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Field paths in serde's notation (`a.b[2].c`) mapped to where their values start.
#[derive(Debug, Default)]
pub struct SourceMap {
    nodes: HashMap<String, Location>,
}

impl SourceMap {
    /// Indexes `text`. A document the parser rejects yields an empty map: serde reports that
    /// error itself, with its own location.
    pub fn index(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return SourceMap::default();
        }
        builder.documents.into_iter().next().unwrap_or_default()
    }

    /// Indexes each document of a multi-document stream (`---` between them), in order. A
    /// stream the parser rejects yields no map: serde reports that error itself.
    pub fn index_documents(text: &str) -> Vec<SourceMap> {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, true).is_err() {
            return Vec::new();
        }
        builder.documents
    }

    /// The location of `path`, or of its nearest ancestor present in the file (a missing field
    /// is reported at the mapping that should hold it).
    pub fn locate(&self, path: &str) -> Option<Location> {
        let mut path = path;
        loop {
            if let Some(loc) = self.nodes.get(path) {
                return Some(*loc);
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Joins a child path to its parent in serde's notation (one definition, the filter crate's).
pub use switchyard_filters::validate::join;

enum Frame {
    Mapping {
        path: String,
        /// The key just read and where it stands, waiting for its value; `None` when the next
        /// node is a key.
        key: Option<(String, Location)>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    nodes: HashMap<String, Location>,
    /// The documents finished so far, when a stream has several.
    documents: Vec<SourceMap>,
}

fn location(mark: Marker) -> Location {
    Location {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

impl Builder {
    /// Called for each node that starts. Returns the node's path when it is a value (not a key).
    ///
    /// A mapping entry is located at its key (`backend: nope` points at `backend`), which is
    /// where a reader looks for "the field"; a sequence item at its first character.
    fn start_node(&mut self, scalar: Option<&str>, mark: Marker) -> Option<String> {
        let (path, at) = match self.stack.last_mut() {
            None => (String::new(), location(mark)),
            Some(Frame::Sequence { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                (p, location(mark))
            }
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some((k, at)) => (join(path, &k), at),
                None => {
                    // This node is a key. Non-scalar keys do not occur in our configs; they get
                    // a placeholder so the value after them still pairs up.
                    *key = Some((scalar.unwrap_or("?").to_owned(), location(mark)));
                    return None;
                }
            },
        };
        self.nodes.insert(path.clone(), at);
        Some(path)
    }

    /// The parser marks a block mapping where it recognised its first key's `:`; the mapping
    /// really starts at that first key.
    fn first_key_seen(&mut self) {
        if let Some(Frame::Mapping {
            path,
            key: Some((_, at)),
        }) = self.stack.last()
        {
            if let Some(loc) = self.nodes.get_mut(path) {
                if (at.line, at.column) < (loc.line, loc.column) {
                    *loc = *at;
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let first_key = matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }));
        match ev {
            Event::Scalar(value, ..) => {
                let is_value = self.start_node(Some(&value), mark).is_some();
                if !is_value && first_key {
                    self.first_key_seen();
                }
            }
            Event::Alias(_) => {
                self.start_node(None, mark);
            }
            Event::MappingStart(..) => {
                let path = self.start_node(None, mark).unwrap_or_default();
                self.stack.push(Frame::Mapping { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.start_node(None, mark).unwrap_or_default();
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::DocumentEnd => {
                self.stack.clear();
                let nodes = std::mem::take(&mut self.nodes);
                self.documents.push(SourceMap { nodes });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
server:
  threads: 2
listeners:
  - name: public
    routes:
      - name: a
        backend: x
      - { name: b, backend: y }
";

    #[test]
    fn locates_values_by_path() {
        let map = SourceMap::index(DOC);
        let at = |line, column| Some(Location { line, column });
        assert_eq!(map.locate("server.threads"), at(2, 3));
        assert_eq!(map.locate("listeners[0]"), at(4, 5));
        assert_eq!(map.locate("listeners[0].routes[0]"), at(6, 9));
        assert_eq!(map.locate("listeners[0].routes[0].backend"), at(7, 9));
        assert_eq!(map.locate("listeners[0].routes[1]"), at(8, 9));
        assert_eq!(map.locate("listeners[0].routes[1].backend"), at(8, 20));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let map = SourceMap::index(DOC);
        assert_eq!(
            map.locate("listeners[0].routes[1].matches[0]"),
            map.locate("listeners[0].routes[1]")
        );
    }

    #[test]
    fn indexes_each_document_of_a_stream() {
        let maps = SourceMap::index_documents("a: 1\n---\nkind: X\nspec:\n  b: 2\n---\nc: 3\n");
        assert_eq!(maps.len(), 3);
        let at = |line, column| Some(Location { line, column });
        assert_eq!(maps[0].locate("a"), at(1, 1));
        assert_eq!(maps[1].locate("spec.b"), at(5, 3));
        assert_eq!(maps[2].locate("c"), at(7, 1));
    }

    #[test]
    fn joins_paths_in_serde_notation() {
        assert_eq!(
            join("listeners[0].routes", "[2].backend"),
            "listeners[0].routes[2].backend"
        );
        assert_eq!(join("listeners[0]", "name"), "listeners[0].name");
        assert_eq!(join("", "server"), "server");
        assert_eq!(join("a", ""), "a");
    }
}
