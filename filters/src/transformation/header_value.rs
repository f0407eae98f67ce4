//! Turning an expression's result into a header value, or deciding the header must go.

use cel::Value;
use http::HeaderValue;

/// Header values longer than this are refused: they would be rejected further along anyway.
pub(super) const MAX_VALUE_LEN: usize = 8 * 1024;

/// Why a header was removed (for `set`) or not added (for `add`) instead of given a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Dropped {
    /// The expression failed: a missing claim, no token (`jwt` unbound), a type error.
    NoValue,
    /// The expression gave `null`.
    Null,
    /// A list, map, bytes or another value with no single textual form.
    NotScalar,
    /// Text that cannot be a header value: CR, LF, NUL or other control characters, bytes
    /// outside ASCII, or more than [`MAX_VALUE_LEN`] bytes.
    InvalidValue,
}

impl Dropped {
    pub(super) const ALL: [Dropped; 4] = [
        Dropped::NoValue,
        Dropped::Null,
        Dropped::NotScalar,
        Dropped::InvalidValue,
    ];

    pub(super) fn code(self) -> &'static str {
        match self {
            Dropped::NoValue => "no_value",
            Dropped::Null => "null",
            Dropped::NotScalar => "not_scalar",
            Dropped::InvalidValue => "invalid_value",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// The rules: a string is used as is; an int, uint, double or bool becomes its text; anything
/// else, and any text that is not a valid header value, drops the header.
pub(super) fn to_header_value(
    result: Result<Value, cel::ExecutionError>,
) -> Result<HeaderValue, Dropped> {
    let text = match result.map_err(|_| Dropped::NoValue)? {
        Value::String(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => return Err(Dropped::Null),
        _ => return Err(Dropped::NotScalar),
    };
    // Visible ASCII, space and tab only. `HeaderValue::from_str` alone would also let bytes
    // above 0x7f through (obsolete `obs-text`), which backends decode inconsistently.
    let allowed = |b: u8| b == b'\t' || (b' '..=b'~').contains(&b);
    if text.len() > MAX_VALUE_LEN || !text.bytes().all(allowed) {
        return Err(Dropped::InvalidValue);
    }
    HeaderValue::from_str(&text).map_err(|_| Dropped::InvalidValue)
}
