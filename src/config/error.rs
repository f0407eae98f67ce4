//! Config errors that say where: file, line, column and field.

use std::fmt;
use std::path::{Path, PathBuf};

use super::source_map::{Location, SourceMap};

/// Why a config file was rejected, and where in it.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub location: Option<Location>,
    /// The field's path (`listeners[0].routes[2].backend`), when the error concerns one.
    pub field: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// An error about a field found after deserialising; the source map supplies its location.
    pub fn at_field(
        file: &Path,
        map: &SourceMap,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        let mut field = field.into();
        let location = map.locate(&field);
        // "missing field `x`" is about `x`, which the file lacks: name it, but point at the
        // place that should hold it.
        if let Some(missing) = field_named_by(&message, "missing field `") {
            field = super::source_map::join(&field, missing);
        }
        ConfigError {
            file: file.to_owned(),
            location,
            field: (!field.is_empty()).then_some(field),
            message,
        }
    }

    /// An error about the file as a whole (it cannot be read, say).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            location: None,
            field: None,
            message: message.into(),
        }
    }

    /// A syntax or type error from serde_yaml, which knows its location and usually its path.
    pub fn from_yaml(file: &Path, err: &serde_yaml::Error) -> Self {
        let location = err.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        });
        let mut message = err.to_string();
        if let Some(l) = err.location() {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            // Said once, in front, in the `file:line:column` form.
            message = message.replacen(&suffix, "", 1);
        }
        // serde_yaml writes "path: message" when it knows the path.
        let (path, message) = match message.split_once(": ") {
            Some((path, rest)) if looks_like_path(path) => (path.to_owned(), rest.to_owned()),
            _ => (String::new(), message),
        };
        // For an unknown or missing field, the field itself is the one to name.
        let named = field_named_by(&message, "unknown field `")
            .or_else(|| field_named_by(&message, "missing field `"));
        let field = match named {
            Some(name) => Some(super::source_map::join(&path, name)),
            None => (!path.is_empty()).then_some(path),
        };
        ConfigError {
            file: file.to_owned(),
            location,
            field,
            message,
        }
    }
}

/// The field name in a serde message such as "unknown field `x`, expected ...".
fn field_named_by<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
}

fn looks_like_path(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'))
}

impl fmt::Display for ConfigError {
    /// `conf/gateway.yaml:12:18: listeners[0].routes[2].backend: <message>`, the shape compilers
    /// use, so editors can jump to it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{loc}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}
