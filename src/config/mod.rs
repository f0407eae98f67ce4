//! The config: its model ([`Config`]), loading it from the native YAML file, and the checks
//! it must pass ([`validate`]) before anything is built from it.
//!
//! The model, not the YAML, is what the rest of the server compiles from. A loaded config is
//! the model plus its [`Origin`]: where each field was written, so that every check, wherever
//! it runs, reports `file:line:column: field: message`.

mod error;
mod model;
mod source_map;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::ConfigError;
pub use model::{
    AccessLogSettings, AdminSettings, AlpnProtocol, BackendConfig, BackendProtocol, BackendTls,
    CertificateConfig, Config, DnsServer, DnsSettings, FilterEntry, GatewayApiSettings,
    HealthCheckConfig, HostConfig, ListenerConfig, ListenerLimits, ListenerTls,
    OutlierDetectionConfig, PhaseFilters, RetryBudgetConfig, ServerSettings, StaticEndpoint,
    TlsVersion,
};
use source_map::join;
pub use source_map::{join as join_path, Location, SourceMap};

/// A config model together with where it came from.
#[derive(Debug)]
pub struct LoadedConfig {
    pub config: Config,
    pub origin: Origin,
    /// What the Gateway API front-end made of the manifests, when the config has them.
    pub gateway_api: Option<crate::gateway_api::Report>,
}

impl LoadedConfig {
    /// An error about one field of this config, located in the file that gave it.
    pub fn error_at(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        self.origin.error_at(field, message)
    }
}

/// Where a config's fields were written: the config file and where in it each field's value
/// sits, and the parts of the model written from other files (Gateway API manifests).
#[derive(Debug)]
pub struct Origin {
    file: PathBuf,
    source_map: SourceMap,
    mounts: Vec<Mount>,
    /// Manifest files read and folders listed, besides the config file: what a reload
    /// watches.
    sources: Vec<PathBuf>,
}

/// A part of the model written from another file's document, such as the routes an
/// HTTPRoute's rule became.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Where the part starts in the model (`listeners[1].routes[4]`).
    pub model: String,
    /// The file and document it was written from.
    pub file: Arc<Path>,
    pub map: Arc<SourceMap>,
    /// Where the part starts in that document (`spec.rules[0]`).
    pub at: String,
    /// How errors name the document (`HTTPRoute default/versioned-routing`).
    pub label: Arc<str>,
}

impl Origin {
    /// The origin of a config written whole in `file`, indexed by `source_map`.
    pub fn new(file: PathBuf, source_map: SourceMap) -> Self {
        Origin {
            file,
            source_map,
            mounts: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// The file the config was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The folder relative paths in the config start from: the config file's own.
    pub fn base_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// Records that the model part at `mount.model` was written from `mount.file`.
    pub fn mount(&mut self, mount: Mount) {
        self.mounts.push(mount);
    }

    /// Records files and folders the config was read from besides its own file.
    pub fn add_sources(&mut self, sources: impl IntoIterator<Item = PathBuf>) {
        self.sources.extend(sources);
    }

    /// Every file and folder the config was read from, its own file first: a change to any
    /// of them is a change of the config.
    pub fn sources(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.file.as_path()).chain(self.sources.iter().map(PathBuf::as_path))
    }

    /// An error about the field at `field` (`listeners[0].routes[2].backend`), pointing at the
    /// line and column of its value (or of the nearest enclosing one the file has), in the
    /// file that wrote it.
    pub fn error_at(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let field = field.into();
        let Some((mount, rest)) = self.mount_of(&field) else {
            return ConfigError::at_field(&self.file, &self.source_map, field, message);
        };
        let in_document = join(&mount.at, rest.strip_prefix('.').unwrap_or(rest));
        let mut error = ConfigError::at_field(&mount.file, &mount.map, in_document, message);
        error.field = Some(match error.field.take() {
            Some(field) => format!("{} {field}", mount.label),
            None => mount.label.to_string(),
        });
        error
    }

    /// The innermost mount holding `field`, and the rest of the path below it.
    fn mount_of<'f>(&self, field: &'f str) -> Option<(&Mount, &'f str)> {
        self.mounts
            .iter()
            .filter_map(|m| {
                let rest = field.strip_prefix(m.model.as_str())?;
                (rest.is_empty() || rest.starts_with(['.', '['])).then_some((m, rest))
            })
            .max_by_key(|(m, _)| m.model.len())
    }
}

/// Reads and deserialises the config at `path`. Checks across fields (names, references,
/// ranges) are [`validate`]'s, run when the config is compiled into a pipeline.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read: {e}")))?;
    parse(path, &text)
}

/// Deserialises config `text`, and the Gateway API manifests it lists; `path` is used in
/// error messages and is where relative paths start.
pub fn parse(path: &Path, text: &str) -> Result<LoadedConfig, ConfigError> {
    let config: Config =
        serde_yaml::from_str(text).map_err(|e| ConfigError::from_yaml(path, &e))?;
    let mut loaded = LoadedConfig {
        config,
        origin: Origin::new(path.to_owned(), SourceMap::index(text)),
        gateway_api: None,
    };
    if let Some(settings) = loaded.config.gateway_api.clone() {
        loaded.gateway_api = Some(crate::gateway_api::load(&mut loaded, &settings)?);
    }
    Ok(loaded)
}
