//! What the fuzz targets share: the shipped lab pipeline, and a way to run a listener's
//! request chain on one request without a server.

use std::path::Path;
use std::sync::OnceLock;

use std::sync::Arc;
use switchyard::pipeline::Pipeline;

use switchyard_filters::{
    Flow, Registry, RequestContext, RequestHeader, RequestState, VerifiedJwt,
};

/// The pipeline of `conf/gateway.yaml`, compiled once.
pub fn lab() -> &'static Pipeline {
    static LAB: OnceLock<Pipeline> = OnceLock::new();
    LAB.get_or_init(|| {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../conf/gateway.yaml"));
        let loaded = switchyard::config::load(path).expect("the lab config loads");
        Pipeline::compile(&loaded, &Registry::with_builtins(), None).expect("the lab compiles")
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Runs the first listener's request chain on `request` as the proxy does, as if `jwt_authn`
/// had verified `jwt` before it; returns the answer's status if the chain answered (a filter's,
/// or its own 500 for a chain that chose no route), and what the chain left in `state`.
pub fn run_chain(
    pipeline: &Pipeline,
    request: &mut RequestHeader,
    state: &mut RequestState,
    jwt: Option<Arc<VerifiedJwt>>,
) -> Option<u16> {
    runtime().block_on(async {
        let mut ctx = RequestContext::new(request, None, state);
        if jwt.is_some() {
            ctx.set_jwt(jwt);
        }
        match pipeline.listeners[0].chain.run_request(&mut ctx).await {
            Flow::Respond(response) => Some(response.status().as_u16()),
            Flow::Continue => None,
        }
    })
}

/// Every header value the chain left must be one a client could not have injected through:
/// no CR, LF or NUL.
pub fn assert_headers_clean(request: &RequestHeader) {
    for (name, value) in request.headers.iter() {
        assert!(
            !value
                .as_bytes()
                .iter()
                .any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "header {name} carries a control byte"
        );
    }
}
