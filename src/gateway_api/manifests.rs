//! Reading manifests: files and folders of multi-document YAML, each document kept with the
//! map of where its fields are, so any later error can point into it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::config::{ConfigError, LoadedConfig, Location, Mount, SourceMap};

/// One object of a manifest file: a YAML document, or an item of a `kind: List` one.
pub struct Document {
    pub file: Arc<Path>,
    pub map: Arc<SourceMap>,
    pub value: serde_yaml::Value,
    /// Where the object is in its YAML document: empty, or `items[3]` in a `kind: List`.
    pub within: String,
    /// `apiVersion` and `kind`, and the metadata this front-end reads.
    pub head: Head,
}

/// What every Kubernetes object starts with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
}

/// The metadata read from an object: other fields (uid, resourceVersion, managedFields, ...)
/// are ignored, so manifests exported from a cluster load as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// RFC 3339; orders otherwise equal routes, oldest first.
    #[serde(default)]
    pub creation_timestamp: Option<String>,
}

impl Document {
    /// The group of `apiVersion` (`gateway.networking.k8s.io`), empty for the core group.
    pub fn group(&self) -> &str {
        match self.head.api_version.rsplit_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    /// `namespace/name`, the namespace `default` when none is given.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.head.metadata.name)
    }

    pub fn namespace(&self) -> &str {
        self.head.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// A `kubernetes.io/tls` Secret's certificate chain and key, as PEM text, from `data`
    /// (base64, as the API server stores it) or `stringData`; else why it is not one.
    pub fn tls_secret(&self) -> Result<(String, String), String> {
        let kind = self.value.get("type").and_then(|t| t.as_str());
        if kind != Some("kubernetes.io/tls") {
            return Err(format!(
                "{} is of type {}, not kubernetes.io/tls",
                self.label(),
                kind.unwrap_or("Opaque")
            ));
        }
        let entry = |name: &str| -> Result<String, String> {
            if let Some(text) = self.value.get("stringData").and_then(|d| d.get(name)) {
                return text
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{}: stringData.{name} is not text", self.label()));
            }
            let encoded = self
                .value
                .get("data")
                .and_then(|d| d.get(name))
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("{} has no {name}", self.label()))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.split_whitespace().collect::<String>())
                .map_err(|e| format!("{}: data.{name} is not base64: {e}", self.label()))?;
            String::from_utf8(bytes)
                .map_err(|_| format!("{}: {name} is not PEM text", self.label()))
        };
        Ok((entry("tls.crt")?, entry("tls.key")?))
    }

    /// How errors name this document: `HTTPRoute default/web`.
    pub fn label(&self) -> String {
        format!("{} {}", self.head.kind, self.key())
    }

    /// An error about `field` of this object (`spec.rules[0]`), at its place in the file.
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let field = crate::config::join_path(&self.within, field);
        let mut error = ConfigError::at_field(&self.file, &self.map, field, message);
        error.field = Some(match error.field.take() {
            Some(field) => format!("{} {field}", self.label()),
            None => self.label(),
        });
        error
    }

    /// Says that the part of the model at `model` was written from `at` in this object.
    pub fn mount(&self, model: String, at: &str) -> Mount {
        Mount {
            model,
            file: self.file.clone(),
            map: self.map.clone(),
            at: crate::config::join_path(&self.within, at),
            label: self.label().into(),
        }
    }

    /// The document's `spec` as `T`; a field `T` does not define, or a value of the wrong
    /// type, is an error at its place in the file. Besides `spec`, the document may hold only
    /// `apiVersion`, `kind`, `metadata` and `status` (which is ignored).
    pub fn spec<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        if let serde_yaml::Value::Mapping(top) = &self.value {
            for key in top.keys() {
                let key = key.as_str().unwrap_or("?");
                if !matches!(key, "apiVersion" | "kind" | "metadata" | "spec" | "status") {
                    return Err(self.error_at(
                        key,
                        format!(
                            "unknown field `{key}`, expected one of `apiVersion`, `kind`, \
                             `metadata`, `spec`, `status`"
                        ),
                    ));
                }
            }
        }
        let spec = self.value.get("spec").cloned().unwrap_or_default();
        serde_path_to_error::deserialize(spec).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            self.error_at(
                &crate::config::join_path("spec", &path),
                e.into_inner().to_string(),
            )
        })
    }
}

/// The documents of every manifest, in the order given (a folder's files by name), and the
/// files and folders they came from.
pub struct Manifests {
    pub documents: Vec<Document>,
    pub sources: Vec<PathBuf>,
}

/// Reads the manifests listed at `gateway_api.manifests` of `loaded`'s config.
pub fn read(loaded: &LoadedConfig, listed: &[PathBuf]) -> Result<Manifests, ConfigError> {
    let base = loaded.origin.base_dir();
    let mut manifests = Manifests {
        documents: Vec::new(),
        sources: Vec::new(),
    };
    for (i, entry) in listed.iter().enumerate() {
        let path = base.join(entry);
        let field = format!("gateway_api.manifests[{i}]");
        let meta = std::fs::metadata(&path)
            .map_err(|e| loaded.error_at(&field, format!("cannot read {}: {e}", path.display())))?;
        let files = if meta.is_dir() {
            manifests.sources.push(path.clone());
            yaml_files(&path).map_err(|e| {
                loaded.error_at(&field, format!("cannot list {}: {e}", path.display()))
            })?
        } else {
            vec![path]
        };
        for file in files {
            read_file(&file, &mut manifests.documents)?;
            manifests.sources.push(file);
        }
    }
    Ok(manifests)
}

/// The `*.yaml` and `*.yml` files directly in `dir`, by name.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(path: &Path, into: &mut Vec<Document>) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read: {e}")))?;
    let file: Arc<Path> = Arc::from(path);
    let mut maps = SourceMap::index_documents(&text).into_iter();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(document)
            .map_err(|e| ConfigError::from_yaml(path, &e))?;
        let map = Arc::new(maps.next().unwrap_or_default());
        // An empty document (a trailing `---`, a file of comments) holds nothing.
        if value.is_null() {
            continue;
        }
        // `kubectl get -o yaml` of several objects writes them as the items of a List.
        let is_list = value.get("kind").and_then(|k| k.as_str()) == Some("List")
            && value.get("items").is_some_and(|i| i.is_sequence());
        if is_list {
            let items = value
                .get("items")
                .and_then(|i| i.as_sequence())
                .cloned()
                .unwrap_or_default();
            for (i, item) in items.into_iter().enumerate() {
                into.push(object(&file, &map, item, format!("items[{i}]"))?);
            }
        } else {
            into.push(object(&file, &map, value, String::new())?);
        }
    }
    Ok(())
}

/// One object of a document, at `within` it.
fn object(
    file: &Arc<Path>,
    map: &Arc<SourceMap>,
    value: serde_yaml::Value,
    within: String,
) -> Result<Document, ConfigError> {
    let head: Head = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let field = crate::config::join_path(&within, &e.path().to_string());
        let mut error = ConfigError::at_field(file, map, field, e.into_inner().to_string());
        if error.location.is_none() {
            error.location = Some(Location { line: 1, column: 1 });
        }
        error
    })?;
    Ok(Document {
        file: file.clone(),
        map: map.clone(),
        value,
        within,
        head,
    })
}
