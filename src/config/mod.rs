//! Loading the config file: read, deserialise, and index where each field sits so that later
//! checks can point at a line.

mod error;
mod model;
mod source_map;

use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use model::{
    AccessLogSettings, AdminSettings, BackendConfig, BackendTls, Config, FilterEntry,
    HealthCheckConfig, HostConfig, ListenerConfig, ListenerLimits, OutlierDetectionConfig,
    PhaseFilters, ServerSettings, StaticEndpoint,
};
pub use source_map::{join as join_path, Location, SourceMap};

/// A deserialised config together with where it came from.
#[derive(Debug)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: Config,
    pub source_map: SourceMap,
}

impl LoadedConfig {
    /// An error about one field of this config, located by the source map.
    pub fn error_at(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::at_field(&self.path, &self.source_map, field, message)
    }
}

/// Reads and deserialises the config at `path`. Semantic checks (names, references) happen when
/// the config is compiled into a pipeline.
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
        path: path.to_owned(),
        config,
        source_map: SourceMap::index(text),
    })
}
