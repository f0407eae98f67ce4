//! The floor for the load benchmark: a pingora proxy that does nothing but pick one of two
//! upstreams by `x-version-override`, with upstream keepalive. No filters, metrics or logs:
//! what pingora itself costs per request on this machine, to compare the gateway against.
//! With the gateway's allocator (mimalloc) and runtime (no work stealing): the floor should be
//! pingora at its best, not its defaults.
//!
//!   bare_proxy LISTEN LATEST_ADDR V2_ADDR THREADS

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    latest: HttpPeer,
    v2: HttpPeer,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let v2 = session
            .req_header()
            .headers
            .get("x-version-override")
            .is_some_and(|v| v.as_bytes() == b"v2");
        Ok(Box::new(if v2 {
            self.v2.clone()
        } else {
            self.latest.clone()
        }))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, latest, v2, threads] = args.as_slice() else {
        eprintln!("usage: bare_proxy LISTEN LATEST_ADDR V2_ADDR THREADS");
        std::process::exit(2);
    };
    let threads: usize = threads.parse().unwrap_or(1);
    let conf = ServerConf {
        threads,
        // The runtime the gateway uses (see src/server.rs): the floor should be pingora at its
        // best, not its default.
        work_stealing: false,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let bare = Bare {
        latest: HttpPeer::new(latest.as_str(), false, String::new()),
        v2: HttpPeer::new(v2.as_str(), false, String::new()),
    };
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, bare);
    service.add_tcp(listen);
    server.add_service(service);
    server.run_forever();
}
