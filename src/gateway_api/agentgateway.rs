//! agentgateway's kinds, as the lab writes them: `AgentgatewayBackend`
//! (`agentgateway.dev/v1alpha1`), and `AgentgatewayPolicy` with its enterprise twin
//! `EnterpriseAgentgatewayPolicy` (`enterpriseagentgateway.solo.io/v1alpha1`), whose
//! `traffic` section carries `jwtAuthentication` and a CEL `transformation`. They become
//! native backends and `jwt_authn` / `transformation` filters.

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::resources::{present, Unsupported};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendSpec {
    #[serde(default, rename = "static")]
    pub static_: Option<StaticBackend>,
    #[serde(default)]
    pub policies: Option<BackendPolicies>,
    #[serde(default)]
    pub ai: Unsupported,
    #[serde(default)]
    pub mcp: Unsupported,
    #[serde(default)]
    pub dynamic_forward_proxy: Unsupported,
}

impl BackendSpec {
    /// What the backend uses that this front-end does not implement; it then does not
    /// resolve.
    pub fn unsupported(&self) -> Vec<&'static str> {
        let mut names = present!(self, ai => "ai", mcp => "mcp", dynamic_forward_proxy => "dynamicForwardProxy");
        if let Some(p) = &self.policies {
            names.extend(present!(p,
                http => "policies.http",
                tcp => "policies.tcp",
                auth => "policies.auth",
                ai => "policies.ai",
                mcp => "policies.mcp",
                a2a => "policies.a2a",
                health => "policies.health",
                tunnel => "policies.tunnel",
            ));
            if let Some(t) = &p.tls {
                names.extend(present!(t,
                    ca_cert_refs => "policies.tls.caCertRefs",
                    mtls_certificate_ref => "policies.tls.mtlsCertificateRef",
                    insecure_skip_verify => "policies.tls.insecureSkipVerify",
                    verify_subject_alt_names => "policies.tls.verifySubjectAltNames",
                    alpn_protocols => "policies.tls.alpnProtocols",
                ));
            }
        }
        names
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticBackend {
    pub host: String,
    pub port: u16,
}

/// Policies attached to a backend: only `tls` is read; the rest is reported unsupported.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendPolicies {
    #[serde(default)]
    pub tls: Option<BackendTlsPolicy>,
    #[serde(default)]
    pub http: Unsupported,
    #[serde(default)]
    pub tcp: Unsupported,
    #[serde(default)]
    pub auth: Unsupported,
    #[serde(default)]
    pub ai: Unsupported,
    #[serde(default)]
    pub mcp: Unsupported,
    #[serde(default)]
    pub a2a: Unsupported,
    #[serde(default)]
    pub health: Unsupported,
    #[serde(default)]
    pub tunnel: Unsupported,
}

/// TLS to the backend; the system's roots unless CA certificates are given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTlsPolicy {
    /// The name sent as SNI and checked against the certificate; default the host.
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub ca_cert_refs: Unsupported,
    #[serde(default)]
    pub mtls_certificate_ref: Unsupported,
    #[serde(default)]
    pub insecure_skip_verify: Unsupported,
    #[serde(default)]
    pub verify_subject_alt_names: Unsupported,
    #[serde(default)]
    pub alpn_protocols: Unsupported,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    #[serde(default)]
    pub target_selectors: Unsupported,
    #[serde(default)]
    pub traffic: Option<Traffic>,
    #[serde(default)]
    pub frontend: Unsupported,
    #[serde(default)]
    pub backend: Unsupported,
}

impl PolicySpec {
    /// What the policy asks for that this front-end does not implement, as field paths below
    /// `spec`. A policy is applied whole or not at all: leaving out part of an
    /// authentication or authorization policy would open what it was written to close, so
    /// any of these is a load error.
    pub fn unsupported(&self) -> Vec<&'static str> {
        let mut names = present!(self,
            target_selectors => "targetSelectors",
            frontend => "frontend",
            backend => "backend",
        );
        if let Some(t) = &self.traffic {
            names.extend(present!(t,
                cors => "traffic.cors",
                ext_auth => "traffic.extAuth",
                ext_proc => "traffic.extProc",
                rate_limit => "traffic.rateLimit",
                api_key_authentication => "traffic.apiKeyAuthentication",
                basic_authentication => "traffic.basicAuthentication",
                authorization => "traffic.authorization",
                csrf => "traffic.csrf",
                header_modifiers => "traffic.headerModifiers",
                host_rewrite => "traffic.hostRewrite",
                timeouts => "traffic.timeouts",
                retry => "traffic.retry",
                direct_response => "traffic.directResponse",
            ));
            if let Some(jwt) = &t.jwt_authentication {
                for p in &jwt.providers {
                    if let Some(r) = &p.jwks.remote {
                        names.extend(present!(r, cache_duration => "traffic.jwtAuthentication.providers[].jwks.remote.cacheDuration"));
                    }
                }
            }
            if let Some(tr) = &t.transformation {
                for h in [&tr.request, &tr.response].into_iter().flatten() {
                    names.extend(present!(h, body => "traffic.transformation.*.body"));
                }
            }
        }
        names
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetRef {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub section_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Traffic {
    /// `PreRouting` or `PostRouting` (the default).
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub jwt_authentication: Option<JwtAuthentication>,
    #[serde(default)]
    pub transformation: Option<Transformation>,
    #[serde(default)]
    pub cors: Unsupported,
    #[serde(default)]
    pub ext_auth: Unsupported,
    #[serde(default)]
    pub ext_proc: Unsupported,
    #[serde(default)]
    pub rate_limit: Unsupported,
    #[serde(default)]
    pub api_key_authentication: Unsupported,
    #[serde(default)]
    pub basic_authentication: Unsupported,
    #[serde(default)]
    pub authorization: Unsupported,
    #[serde(default)]
    pub csrf: Unsupported,
    #[serde(default)]
    pub header_modifiers: Unsupported,
    #[serde(default)]
    pub host_rewrite: Unsupported,
    #[serde(default)]
    pub timeouts: Unsupported,
    #[serde(default)]
    pub retry: Unsupported,
    #[serde(default)]
    pub direct_response: Unsupported,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtAuthentication {
    /// `Strict` (the default), `Optional` or `Permissive`.
    #[serde(default)]
    pub mode: Option<String>,
    pub providers: Vec<JwtProvider>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtProvider {
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub jwks: Jwks,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Jwks {
    #[serde(default)]
    pub inline: Option<String>,
    #[serde(default)]
    pub remote: Option<RemoteJwks>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteJwks {
    pub jwks_path: String,
    pub backend_ref: ObjectRef,
    #[serde(default)]
    pub cache_duration: Unsupported,
}

/// A reference to a backend object: a `Service` (with `port`) or an `AgentgatewayBackend`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transformation {
    #[serde(default)]
    pub request: Option<HeaderTransform>,
    #[serde(default)]
    pub response: Option<HeaderTransform>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderTransform {
    #[serde(default)]
    pub set: Vec<NameValue>,
    #[serde(default)]
    pub add: Vec<NameValue>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub body: Unsupported,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameValue {
    pub name: String,
    /// A CEL expression.
    pub value: String,
}

impl JwtAuthentication {
    /// The native `jwt_authn` config; `backend_of` names the model backend a remote JWKS is
    /// fetched through. Provider names are their issuers.
    pub fn to_native(
        &self,
        mut backend_of: impl FnMut(&ObjectRef) -> Option<String>,
    ) -> Result<Value, String> {
        let mode = match self.mode.as_deref().unwrap_or("Strict") {
            "Strict" => "strict",
            "Optional" => "optional",
            "Permissive" => "permissive",
            other => {
                return Err(format!(
                    "unknown mode `{other}` (modes: Strict, Optional, Permissive)"
                ))
            }
        };
        let mut providers = Vec::with_capacity(self.providers.len());
        for p in &self.providers {
            let mut jwks = Mapping::new();
            match (&p.jwks.inline, &p.jwks.remote) {
                (Some(inline), None) => {
                    jwks.insert("inline".into(), inline.clone().into());
                }
                (None, Some(remote)) => {
                    let backend = backend_of(&remote.backend_ref).ok_or_else(|| {
                        format!(
                            "the JWKS backend `{}` does not resolve",
                            remote.backend_ref.name
                        )
                    })?;
                    let mut r = Mapping::new();
                    r.insert("backend".into(), backend.into());
                    r.insert("path".into(), remote.jwks_path.clone().into());
                    jwks.insert("remote".into(), Value::Mapping(r));
                }
                _ => return Err("a provider's jwks needs `inline` or `remote`, one of them".into()),
            }
            let mut provider = Mapping::new();
            provider.insert("name".into(), p.issuer.clone().into());
            provider.insert("issuer".into(), p.issuer.clone().into());
            provider.insert(
                "audiences".into(),
                Value::Sequence(p.audiences.iter().cloned().map(Value::from).collect()),
            );
            provider.insert("jwks".into(), Value::Mapping(jwks));
            providers.push(Value::Mapping(provider));
        }
        let mut config = Mapping::new();
        config.insert("mode".into(), mode.into());
        config.insert("providers".into(), Value::Sequence(providers));
        Ok(Value::Mapping(config))
    }
}

impl HeaderTransform {
    /// The native `transformation` section (`request` or `response`).
    pub fn to_native(&self) -> Value {
        let entries = |list: &[NameValue]| {
            Value::Sequence(
                list.iter()
                    .map(|nv| {
                        let mut m = Mapping::new();
                        m.insert("name".into(), nv.name.clone().into());
                        m.insert("value".into(), nv.value.clone().into());
                        Value::Mapping(m)
                    })
                    .collect(),
            )
        };
        let mut section = Mapping::new();
        section.insert("set".into(), entries(&self.set));
        section.insert("add".into(), entries(&self.add));
        section.insert(
            "remove".into(),
            Value::Sequence(self.remove.iter().cloned().map(Value::from).collect()),
        );
        Value::Mapping(section)
    }
}
