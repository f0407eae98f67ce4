//! The Gateway API front-end: Kubernetes manifests (`Gateway`, `HTTPRoute`, and agentgateway's
//! backends and policies) served as they are, without a cluster.
//!
//! The native config's `gateway_api` section lists the manifests and says what a cluster
//! would otherwise tell: which GatewayClass is served here, where each Gateway's addresses
//! and each Service are. The manifests are translated into the same model the native config
//! is (listeners, routes in the specification's order, backends, filters), and then go
//! through the same validation and the same compilation; errors point into the manifest that
//! wrote the part.
//!
//! What a controller would write into `status` is computed as a [`Report`] and printed by
//! `switchyard check`; nothing is written back.
//!
//! # Files
//! - `manifests.rs`: reading files and folders of multi-document YAML.
//! - `resources.rs`: the Gateway API kinds; `agentgateway.rs`: agentgateway's.
//! - `translate.rs`: resources into the model.
//! - `precedence.rs`: the order of route matches; `hostnames.rs`: host name intersection.
//! - `status.rs`: conditions, and the report `check` prints.

mod agentgateway;
mod hostnames;
mod manifests;
mod precedence;
mod resources;
mod status;
mod translate;

use std::collections::BTreeMap;

pub use status::Report;

use crate::config::{ConfigError, GatewayApiSettings, LoadedConfig, Mount};
use manifests::Document;
use translate::Resources;

/// Reads the manifests `loaded`'s config lists and adds what they describe to its model.
pub fn load(
    loaded: &mut LoadedConfig,
    settings: &GatewayApiSettings,
) -> Result<Report, ConfigError> {
    for (key, target) in &settings.services {
        if translate::split_host_port(target).is_none() {
            return Err(loaded.error_at(
                format!("gateway_api.services.{key}"),
                format!("`{target}` is not host:port"),
            ));
        }
    }
    let read = manifests::read(loaded, &settings.manifests)?;
    let resources = collect(&read.documents)?;
    let translation = translate::translate(settings, &resources)?;

    let config = &mut loaded.config;
    let (listeners, backends) = (config.listeners.len(), config.backends.len());
    for mount in translation.mounts {
        let model = shift(&mount.model, "listeners[", listeners)
            .or_else(|| shift(&mount.model, "backends[", backends))
            .unwrap_or(mount.model.clone());
        loaded.origin.mount(Mount { model, ..mount });
    }
    config.listeners.extend(translation.listeners);
    config.backends.extend(translation.backends);
    loaded.origin.add_sources(read.sources);
    Ok(translation.report)
}

/// `listeners[2].routes[0]` with its index moved up by `by`, when it starts with `prefix`.
fn shift(model: &str, prefix: &str, by: usize) -> Option<String> {
    let rest = model.strip_prefix(prefix)?;
    let (index, rest) = rest.split_once(']')?;
    let index: usize = index.parse().ok()?;
    Some(format!("{prefix}{}]{rest}", index + by))
}

/// The documents by kind; kinds not served here are listed as ignored.
fn collect(documents: &[Document]) -> Result<Resources<'_>, ConfigError> {
    let mut resources = Resources {
        gateways: Vec::new(),
        routes: Vec::new(),
        backends: BTreeMap::new(),
        policies: Vec::new(),
        namespaces: BTreeMap::new(),
        grants: Vec::new(),
        secrets: BTreeMap::new(),
        ignored: Vec::new(),
    };
    let mut seen: BTreeMap<String, &Document> = BTreeMap::new();
    for doc in documents {
        let kind = doc.head.kind.as_str();
        if doc.head.metadata.name.is_empty() {
            return Err(doc.error_at("metadata.name", "every object needs a name"));
        }
        let id = format!("{}/{kind}/{}", doc.group(), doc.key());
        if let Some(first) = seen.insert(id, doc) {
            return Err(doc.error_at(
                "metadata.name",
                format!(
                    "{} is defined twice (first in {})",
                    doc.label(),
                    first.file.display()
                ),
            ));
        }
        match (doc.group(), kind) {
            ("gateway.networking.k8s.io", "Gateway") => resources.gateways.push((doc, doc.spec()?)),
            ("gateway.networking.k8s.io", "HTTPRoute") => resources.routes.push((doc, doc.spec()?)),
            ("agentgateway.dev", "AgentgatewayBackend") => {
                resources.backends.insert(doc.key(), (doc, doc.spec()?));
            }
            ("agentgateway.dev", "AgentgatewayPolicy")
            | ("enterpriseagentgateway.solo.io", "EnterpriseAgentgatewayPolicy") => {
                resources.policies.push((doc, doc.spec()?))
            }
            ("gateway.networking.k8s.io", "ReferenceGrant") => resources
                .grants
                .push((doc.namespace().to_owned(), doc.spec()?)),
            ("", "Secret") => {
                resources.secrets.insert(doc.key(), doc);
            }
            ("", "Namespace") => {
                resources.namespaces.insert(
                    doc.head.metadata.name.clone(),
                    doc.head.metadata.labels.clone(),
                );
            }
            _ => resources.ignored.push(format!(
                "{} ({}): not a kind served here",
                doc.label(),
                doc.file.display()
            )),
        }
    }
    Ok(resources)
}
