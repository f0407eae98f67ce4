//! Filter factories and the registry that finds them by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{BackendRef, Background, Filter, HttpClient, Phase};

/// A filter by registry name, with its own config (checked by that filter's factory): an
/// entry of a listener's phase, or of a route's own filters.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilterEntry {
    pub name: String,
    #[serde(default)]
    pub config: serde_yaml::Value,
}

/// A filter's config could not be turned into a filter.
///
/// `path` locates the offending field inside the filter's own config (`[2].matches[0].path`),
/// so the server can prefix where that config sits in the file and point at its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct FilterConfigError {
    pub path: String,
    pub message: String,
}

impl FilterConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FilterConfigError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Deserialises a filter's config, reporting the path of any field that does not fit.
    pub fn parse<T: DeserializeOwned>(config: &serde_yaml::Value) -> Result<T, Self> {
        serde_path_to_error::deserialize(config.clone()).map_err(|e| {
            let path = e.path().to_string();
            // serde_path_to_error renders an empty path as ".".
            let path = if path == "." { String::new() } else { path };
            FilterConfigError::new(path, e.into_inner().to_string())
        })
    }
}

/// What a factory may look up while it builds a filter.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    backends: &'a [Arc<str>],
    clients: &'a [Arc<dyn HttpClient>],
    background: Option<&'a Background>,
    registry: Option<&'a Registry>,
    base_dir: &'a Path,
    phase: Option<Phase>,
    listener: Option<Listener<'a>>,
}

/// The listener a filter is built for.
#[derive(Clone, Copy)]
pub struct Listener<'a> {
    pub name: &'a str,
    /// Its routes' names, in table order.
    pub routes: &'a [String],
}

impl<'a> BuildContext<'a> {
    /// `backends` are the configured backend names, in their table order; `base_dir` is the
    /// folder of the config file, against which relative paths in filter configs resolve.
    pub fn new(backends: &'a [Arc<str>], base_dir: &'a Path) -> Self {
        BuildContext {
            backends,
            clients: &[],
            background: None,
            registry: None,
            base_dir,
            phase: None,
            listener: None,
        }
    }

    /// The same context for the filters of one listener.
    pub fn for_listener(self, listener: Listener<'a>) -> Self {
        BuildContext {
            listener: Some(listener),
            ..self
        }
    }

    /// The listener being built, when the server builds one (not in unit tests).
    pub fn listener(&self) -> Option<Listener<'a>> {
        self.listener
    }

    /// The same context with the registry, for a filter that builds filters of its own (the
    /// router, for each route's filters).
    pub fn with_registry(self, registry: &'a Registry) -> Self {
        BuildContext {
            registry: Some(registry),
            ..self
        }
    }

    /// Builds the filter `entry` names for `phase`; `at` is where the entry sits, for errors
    /// (`[2].filters.request[0]`).
    pub fn build_filter(
        &self,
        entry: &FilterEntry,
        phase: Phase,
        at: &str,
    ) -> Result<Arc<dyn Filter>, FilterConfigError> {
        let registry = self.registry.ok_or_else(|| {
            FilterConfigError::new(format!("{at}.name"), "no filter registry to build it with")
        })?;
        let factory = registry.get(&entry.name).ok_or_else(|| {
            FilterConfigError::new(
                format!("{at}.name"),
                crate::validate::unknown("filter", &entry.name, registry.names()),
            )
        })?;
        if !factory.phases().contains(&phase) {
            return Err(FilterConfigError::new(
                format!("{at}.name"),
                format!("filter `{}` cannot run in {phase}", entry.name),
            ));
        }
        factory
            .build(&entry.config, &self.in_phase(phase))
            .map_err(|e| {
                FilterConfigError::new(
                    crate::validate::join(&format!("{at}.config"), &e.path),
                    e.message,
                )
            })
    }

    /// The same context with an HTTP client per backend, in the order of `backends`.
    pub fn with_clients(self, clients: &'a [Arc<dyn HttpClient>]) -> Self {
        BuildContext { clients, ..self }
    }

    /// The same context for a running server, whose filters may work in the background.
    pub fn with_background(self, background: &'a Background) -> Self {
        BuildContext {
            background: Some(background),
            ..self
        }
    }

    /// A client that fetches from `backend` over its connection settings (TLS included).
    pub fn client(&self, backend: &BackendRef) -> Option<Arc<dyn HttpClient>> {
        self.clients.get(backend.index).cloned()
    }

    /// The server's background runtime and shared state; `None` when the config is only being
    /// checked or explained, where filters must not start background work.
    pub fn background(&self) -> Option<&'a Background> {
        self.background
    }

    /// The same context for a filter placed in `phase`.
    pub fn in_phase(self, phase: Phase) -> Self {
        BuildContext {
            phase: Some(phase),
            ..self
        }
    }

    /// The phase the filter being built runs in; `None` for the router.
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// `path` as written in a filter config, resolved against the config file's folder.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    /// Resolves a backend name to its place in the server's table; for a name that is not
    /// there, the message that says so and lists the backends there are.
    pub fn backend(&self, name: &str) -> Result<BackendRef, String> {
        self.backends
            .iter()
            .position(|b| &**b == name)
            .map(|index| BackendRef {
                index,
                name: self.backends[index].clone(),
            })
            .ok_or_else(|| crate::validate::unknown("backend", name, self.backends))
    }
}

/// Builds one kind of filter from its YAML config.
pub trait FilterFactory: Send + Sync + 'static {
    /// The name the config uses for this filter.
    fn name(&self) -> &'static str;

    /// The phases this filter may be configured in.
    fn phases(&self) -> &'static [Phase];

    /// Builds the filter; runs at config load, never on the request path, so it is the place to
    /// compile regexes and expressions and to reject anything that could fail later.
    fn build(
        &self,
        config: &serde_yaml::Value,
        ctx: &BuildContext<'_>,
    ) -> Result<Arc<dyn Filter>, FilterConfigError>;
}

/// The filter factories known to the gateway, by name.
pub struct Registry {
    factories: BTreeMap<&'static str, Box<dyn FilterFactory>>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Registry {
            factories: BTreeMap::new(),
        }
    }

    /// The registry of every built-in filter placed in a phase. (The router is not among
    /// them: the server builds it from a listener's `routes`.)
    pub fn with_builtins() -> Self {
        let mut registry = Self::empty();
        registry.register(crate::jwt_authn::JwtAuthnFactory);
        registry.register(crate::rate_limit::RateLimitFactory);
        registry.register(crate::transformation::TransformationFactory);
        registry.register(crate::url_rewrite::UrlRewriteFactory);
        registry
    }

    /// Adds a factory; a later registration under the same name replaces the earlier one.
    pub fn register(&mut self, factory: impl FilterFactory) {
        self.factories.insert(factory.name(), Box::new(factory));
    }

    pub fn get(&self, name: &str) -> Option<&dyn FilterFactory> {
        self.factories.get(name).map(|f| &**f)
    }

    /// The registered names, sorted, for error messages.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_builtins()
    }
}
