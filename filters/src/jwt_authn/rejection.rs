//! Why a token was not accepted, and the 401 that says so (RFC 6750).

use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};

use crate::LocalResponse;

/// The outcome of looking for and checking a token, other than success. The names are stable:
/// they are the `reason` in error bodies and, later, metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No token in the request.
    Missing,
    /// Not a well-formed JWT (or too large, or sent more than once).
    Malformed,
    /// The token's `alg` is not the one its key is pinned to (`none`, HMAC against RSA, ...).
    AlgorithmNotAllowed,
    /// No key with the token's `kid`, or no `kid` and not exactly one candidate key.
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// A claim the provider requires (`exp`, `iss`, `aud`) is absent.
    MissingClaim(&'static str),
    /// The provider's keys could not be fetched (yet): the token cannot be judged, which is
    /// the gateway's failure, not the client's.
    KeysUnavailable,
}

impl Reason {
    /// Every reason, in a fixed order (for counters).
    pub const ALL: [Reason; 11] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::AlgorithmNotAllowed,
        Reason::UnknownKey,
        Reason::BadSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::WrongIssuer,
        Reason::WrongAudience,
        Reason::MissingClaim("exp"),
        Reason::KeysUnavailable,
    ];

    /// The position of this reason in [`Reason::ALL`] (all missing claims share one).
    pub fn index(self) -> usize {
        match self {
            Reason::Missing => 0,
            Reason::Malformed => 1,
            Reason::AlgorithmNotAllowed => 2,
            Reason::UnknownKey => 3,
            Reason::BadSignature => 4,
            Reason::Expired => 5,
            Reason::NotYetValid => 6,
            Reason::WrongIssuer => 7,
            Reason::WrongAudience => 8,
            Reason::MissingClaim(_) => 9,
            Reason::KeysUnavailable => 10,
        }
    }

    /// A short, stable code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::AlgorithmNotAllowed => "algorithm_not_allowed",
            Reason::UnknownKey => "unknown_key",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::MissingClaim(_) => "missing_claim",
            Reason::KeysUnavailable => "keys_unavailable",
        }
    }

    /// A human-readable description. Constant text only: nothing from the token is echoed.
    pub fn description(self) -> &'static str {
        match self {
            Reason::Missing => "a bearer token is required",
            Reason::Malformed => "the token is malformed",
            Reason::AlgorithmNotAllowed => "the token's algorithm is not allowed for its key",
            Reason::UnknownKey => "the token's signing key is unknown",
            Reason::BadSignature => "the token's signature is invalid",
            Reason::Expired => "the token has expired",
            Reason::NotYetValid => "the token is not valid yet",
            Reason::WrongIssuer => "the token's issuer is not accepted",
            Reason::WrongAudience => "the token's audience is not accepted",
            Reason::MissingClaim("exp") => "the token has no exp claim",
            Reason::MissingClaim("iss") => "the token has no iss claim",
            Reason::MissingClaim("aud") => "the token has no aud claim",
            Reason::MissingClaim(_) => "the token lacks a required claim",
            Reason::KeysUnavailable => "signing keys unavailable",
        }
    }

    /// The answer for this reason: a 401 for the client's token, a 503 for the gateway's keys.
    ///
    /// A missing token gets a bare challenge (RFC 6750 §3.1: no `error` when the request had no
    /// authentication); an invalid one says why. Unavailable keys are a 503 with
    /// `Retry-After`, not a 401: the token may be perfectly good, and a 401 would tell the
    /// client to throw it away (or its user to log in again) for the gateway's failure.
    pub fn response(self, realm: &str) -> LocalResponse {
        if self == Reason::KeysUnavailable {
            let body = serde_json::json!({
                "error": "temporarily_unavailable",
                "reason": self.code(),
                "message": "signing keys unavailable: the token cannot be verified now; retry later",
            });
            return LocalResponse::json(StatusCode::SERVICE_UNAVAILABLE, &body)
                .with_header(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        let (challenge, body) = match self {
            Reason::Missing => (
                format!("Bearer realm=\"{realm}\""),
                serde_json::json!({
                    "error": "missing_token",
                    "message": self.description(),
                }),
            ),
            _ => (
                format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                    self.description()
                ),
                serde_json::json!({
                    "error": "invalid_token",
                    "reason": self.code(),
                    "message": self.description(),
                }),
            ),
        };
        let response = LocalResponse::json(StatusCode::UNAUTHORIZED, &body);
        // The realm is checked at config load to be a valid quoted-string; the descriptions are
        // constants.
        match HeaderValue::from_str(&challenge) {
            Ok(value) => response.with_header(WWW_AUTHENTICATE, value),
            Err(_) => response,
        }
    }
}
