//! Token extraction, parsing and validation through the lab's chain. The first byte picks
//! the shape: raw bytes as the bearer token, or three fuzzed segments (header JSON, claims
//! JSON, signature) base64url-encoded into a well-formed JWT, which reaches the JSON and
//! signature checks. A token never signed by the lab key must never be accepted.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use switchyard_filters::{RequestHeader, RequestState};
use switchyard_fuzz::{assert_headers_clean, lab, run_chain};

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let token: Vec<u8> = if shape % 2 == 0 {
        rest.to_vec()
    } else {
        let mut parts = rest.splitn(3, |b| *b == 0xff);
        let header = parts.next().unwrap_or_default();
        let claims = parts.next().unwrap_or_default();
        let signature = parts.next().unwrap_or_default();
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode(signature)
        )
        .into_bytes()
    };
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(&token);
    let Ok(mut request) = RequestHeader::build("GET", b"/", None) else {
        return;
    };
    if request.insert_header("authorization", value).is_err() {
        return;
    }
    let mut state = RequestState::default();
    let answered = run_chain(lab(), &mut request, &mut state, None);
    // Nothing here carries the lab key's signature: every token is refused with a 401.
    assert_eq!(answered, Some(401), "a forged token was not refused");
    assert!(state.jwt().is_none());
    assert_headers_clean(&request);
});
