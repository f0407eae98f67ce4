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

pub use error::ConfigError;
pub use model::{
    AccessLogSettings, AdminSettings, BackendConfig, BackendTls, Config, FilterEntry,
    HealthCheckConfig, HostConfig, ListenerConfig, ListenerLimits, OutlierDetectionConfig,
    PhaseFilters, ServerSettings, StaticEndpoint,
};
pub use source_map::{join as join_path, Location, SourceMap};

/// A config model together with where it came from.
#[derive(Debug)]
pub struct LoadedConfig {
    pub config: Config,
    pub origin: Origin,
}

impl LoadedConfig {
    /// An error about one field of this config, located in the file that gave it.
    pub fn error_at(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        self.origin.error_at(field, message)
    }
}

/// Where a config's fields were written: the file, and where in it each field's value sits.
#[derive(Debug)]
pub struct Origin {
    file: PathBuf,
    source_map: SourceMap,
}

impl Origin {
    /// The file the config was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The folder relative paths in the config start from: the config file's own.
    pub fn base_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// An error about the field at `field` (`listeners[0].routes[2].backend`), pointing at the
    /// line and column of its value, or of the nearest enclosing one the file has.
    pub fn error_at(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::at_field(&self.file, &self.source_map, field, message)
    }
}

/// Reads and deserialises the config at `path`. Checks across fields (names, references,
/// ranges) are [`validate`]'s, run when the config is compiled into a pipeline.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read: {e}")))?;
    parse(path, &text)
}

/// Deserialises config `text`; `path` is used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<LoadedConfig, ConfigError> {
    let config: Config =
        serde_yaml::from_str(text).map_err(|e| ConfigError::from_yaml(path, &e))?;
    Ok(LoadedConfig {
        config,
        origin: Origin {
            file: path.to_owned(),
            source_map: SourceMap::index(text),
        },
    })
}
