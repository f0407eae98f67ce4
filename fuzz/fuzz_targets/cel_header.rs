//! CEL results to header values: arbitrary claims (any JSON) through a transformation with
//! expressions of every shape. A header is either set to a clean value or removed; a
//! client's own copy never survives.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use switchyard::pipeline::Pipeline;
use switchyard_filters::{Registry, RequestHeader, RequestState, VerifiedJwt};
use switchyard_fuzz::{assert_headers_clean, run_chain};

const CONFIG: &str = r#"
backends:
  - { name: app, static: { host: 127.0.0.2, port: 30080 } }
listeners:
  - name: public
    address: 127.0.0.1:18080
    filters:
      pre_routing:
        - name: transformation
          config:
            request:
              set:
                - { name: x-a, value: jwt.version }
                - { name: x-b, value: jwt.userMetadata.version }
                - { name: x-c, value: "string(jwt.n)" }
                - { name: x-d, value: "jwt.version + '-' + jwt.region" }
                - { name: x-e, value: "has(jwt.tags) ? jwt.tags[0] : 'none'" }
                - { name: x-f, value: jwt }
    routes:
      - { name: all, backend: app }
"#;

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let loaded = switchyard::config::parse(Path::new("fuzz.yaml"), CONFIG).expect("parses");
        Pipeline::compile(&loaded, &Registry::with_builtins(), None).expect("compiles")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(mut request) = RequestHeader::build("GET", b"/", None) else {
        return;
    };
    // A client's attempt to choose the value itself.
    let _ = request.insert_header("x-a", "forged");
    let mut state = RequestState::default();
    let jwt = Arc::new(VerifiedJwt::new("fuzz".into(), claims.clone()));
    assert_eq!(
        run_chain(pipeline(), &mut request, &mut state, Some(jwt)),
        None
    );
    assert_headers_clean(&request);
    let expected = claims.get("version").and_then(|v| v.as_str());
    let got = request.headers.get("x-a").map(|v| v.as_bytes());
    if got == Some(b"forged") {
        assert_eq!(expected, Some("forged"), "the client's x-a survived");
    }
});
