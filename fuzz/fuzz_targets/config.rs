//! Config parsing and compilation on arbitrary text: every input is accepted or refused with
//! an error that names a place in the file; none may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use switchyard::pipeline::Pipeline;
use switchyard_filters::Registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent/fuzz/gateway.yaml");
    let Ok(loaded) = switchyard::config::parse(path, text) else {
        return;
    };
    if let Err(e) = Pipeline::compile(&loaded, &Registry::with_builtins(), None) {
        let message = e.to_string();
        assert!(
            message.starts_with("/nonexistent/fuzz/gateway.yaml"),
            "{message}"
        );
    }
});
