//! The YAML shape of `transformation`.
//!
//! ```yaml
//! - name: transformation
//!   config:
//!     request:                      # in pre_routing or post_routing
//!       set:                        # replace the header (or remove it, see below)
//!         - { name: x-tenant-version, value: jwt.version }
//!       add:                        # append a value, keeping existing ones
//!         - { name: x-client-ip, value: source.address }
//!       remove: [x-internal-debug]
//! - name: transformation
//!   config:
//!     response:                     # in the response phase
//!       set:
//!         - { name: x-served-version, value: 'request.headers["x-tenant-version"]' }
//! ```
//!
//! Every `value` is a CEL expression (a string literal is `'text'`); `text` instead of `value`
//! gives a fixed header value with no expression at all:
//!
//! ```yaml
//!       set:
//!         - { name: x-served-by, text: edge-1 }
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransformationConfig {
    #[serde(default)]
    pub request: Option<HeaderOps>,
    #[serde(default)]
    pub response: Option<HeaderOps>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeaderOps {
    #[serde(default)]
    pub set: Vec<HeaderExpr>,
    #[serde(default)]
    pub add: Vec<HeaderExpr>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A header and its value: a CEL expression (`value`) or a fixed text (`text`), one of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeaderExpr {
    pub name: String,
    /// A CEL expression.
    #[serde(default)]
    pub value: Option<String>,
    /// A fixed value, used as it is.
    #[serde(default)]
    pub text: Option<String>,
}
