//! Route matching on arbitrary method, path and header bytes through the lab's chain: every
//! request either routes to a configured backend or gets the router's 404; a request without
//! a token never reaches v2 unless it asked for it by `x-version-override`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_filters::{RequestHeader, RequestState};
use switchyard_fuzz::{assert_headers_clean, lab, run_chain};

fuzz_target!(|data: &[u8]| {
    // Fields separated by NUL: method, path, then header name and value pairs.
    let mut fields = data.split(|b| *b == 0);
    let method = fields.next().unwrap_or_default();
    let path = fields.next().unwrap_or_default();
    let Ok(method) = std::str::from_utf8(method) else {
        return;
    };
    let Ok(mut request) = RequestHeader::build(method, path, None) else {
        return;
    };
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let Ok(name) = http::HeaderName::from_bytes(name) else {
            continue;
        };
        let Ok(value) = http::HeaderValue::from_bytes(value) else {
            continue;
        };
        if name == http::header::AUTHORIZATION {
            continue; // tokens are the token target's business
        }
        let _ = request.append_header(name, value);
    }
    let asked_v2 = request
        .headers
        .get_all("x-version-override")
        .iter()
        .any(|v| v.as_bytes() == b"v2");
    let mut state = RequestState::default();
    match run_chain(lab(), &mut request, &mut state, None) {
        None => {
            let route = state.route().expect("no answer means a route was chosen");
            assert!(
                &*route.backend.name == "app-latest" || asked_v2,
                "tokenless request reached {} without asking",
                route.backend.name
            );
        }
        Some(status) => assert_eq!(status, 404, "only the router answers here"),
    }
    assert_headers_clean(&request);
});
