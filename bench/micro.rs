//! Micro-benchmarks of the request path, each step alone and the whole pre-routing chain:
//!
//! - route matching on the lab's table and on a table of 1,000 routes;
//! - RS256 verification of a token (no cache), and the same token answered from the cache;
//! - the CEL projection `jwt.version` into `x-tenant-version`;
//! - the lab's whole `pre_routing` chain plus the router on one request, with a cached token,
//!   with a token verified anew (the cache off), and with none.
//!
//!   cargo bench --bench micro            (criterion; results in target/criterion)

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use switchyard::config;
use switchyard::lab::token::{mint, parse_algorithm, TokenSpec};
use switchyard::pipeline::Pipeline;
use switchyard_filters::{
    Filter, FilterChain, Flow, Registry, RequestContext, RequestHeader, RequestState,
};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The shipped lab config, compiled; without its token cache when `cache` is false.
fn lab(cache: bool) -> Pipeline {
    let yaml = std::fs::read_to_string("conf/gateway.yaml").expect("conf/gateway.yaml");
    let anchor = "mode: optional";
    assert!(yaml.contains(anchor), "the lab config changed");
    let yaml = if cache {
        yaml
    } else {
        yaml.replace(anchor, "mode: optional\n            token_cache_entries: 0")
    };
    compile(&yaml)
}

fn compile(yaml: &str) -> Pipeline {
    let mut file = tempfile::NamedTempFile::new_in("conf").expect("temp file");
    file.write_all(yaml.as_bytes()).expect("write");
    let loaded = config::load(file.path()).expect("config loads");
    Pipeline::compile(&loaded, &Registry::with_builtins(), None).expect("config compiles")
}

/// A lab token (claim version=v2).
fn token() -> String {
    let claims = ["version=v2".to_owned()];
    let spec = TokenSpec {
        key_pem: std::path::Path::new("conf/demo/jwt-demo-key.pem"),
        alg: parse_algorithm("RS256").expect("alg"),
        kid: Some(switchyard::lab::demo::DEMO_KID),
        issuer: Some(switchyard::lab::demo::DEMO_ISSUER),
        audience: Some(switchyard::lab::demo::DEMO_AUDIENCE),
        ttl: Some(Duration::from_secs(3600)),
        claims: &claims,
    };
    mint(&spec).expect("mint")
}

fn request(headers: &[(&str, &str)]) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/orders/42?region=eu", None).expect("request");
    req.insert_header("host", "api.example.com")
        .expect("header");
    req.insert_header("user-agent", "bench/1.0")
        .expect("header");
    req.insert_header("accept", "application/json")
        .expect("header");
    for (name, value) in headers {
        req.insert_header(name.to_string(), *value).expect("header");
    }
    req
}

/// Runs the chain on `req` as the proxy does, and returns the route chosen.
fn run_chain(
    runtime: &tokio::runtime::Runtime,
    chain: &FilterChain,
    mut req: RequestHeader,
) -> Option<Arc<str>> {
    let mut state = RequestState::default();
    let mut ctx = RequestContext::new(&mut req, Some(CLIENT), &mut state);
    match runtime.block_on(chain.run_request(&mut ctx)) {
        Flow::Continue => state.route().map(|r| r.route.clone()),
        Flow::Respond(_) => None,
    }
}

/// Runs one filter alone on `req`, and returns the route chosen (if it is the router).
fn run_filter(
    runtime: &tokio::runtime::Runtime,
    filter: &dyn Filter,
    mut req: RequestHeader,
) -> Option<Arc<str>> {
    let mut state = RequestState::default();
    let mut ctx = RequestContext::new(&mut req, Some(CLIENT), &mut state);
    runtime.block_on(filter.on_request(&mut ctx));
    state.route().map(|r| r.route.clone())
}

/// Benchmarks `step` on `req`: each iteration gets a fresh copy, made outside the timing.
fn bench_on(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    req: &RequestHeader,
    mut step: impl FnMut(RequestHeader) -> Option<Arc<str>>,
) {
    group.bench_function(name, |b| {
        b.iter_batched(|| req.clone(), &mut step, BatchSize::SmallInput)
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn routing(c: &mut Criterion) {
    let rt = runtime();
    let lab = lab(true);
    let router = lab.listeners[0].chain.router();
    let mut group = c.benchmark_group("router");
    for (name, headers) in [
        ("lab, no header", vec![]),
        (
            "lab, x-version-override: v2",
            vec![("x-version-override", "v2")],
        ),
        (
            "lab, x-tenant-version: v2",
            vec![("x-tenant-version", "v2")],
        ),
    ] {
        let req = request(&headers);
        assert!(run_filter(&rt, router, req.clone()).is_some());
        bench_on(&mut group, name, &req, |r| run_filter(&rt, router, r));
    }

    // 1,000 routes, each on a path prefix and a header; the request matches the last one.
    let mut yaml = String::from(
        "backends: [{ name: b, static: { host: 127.0.0.2, port: 8080 } }]\n\
         listeners:\n  - name: l\n    address: 127.0.0.1:18080\n    routes:\n",
    );
    for i in 0..1000 {
        yaml.push_str(&format!(
            "      - {{ name: r{i}, matches: [{{ path: {{ value: /svc{i} }}, headers: [{{ name: x-tenant, value: t{i} }}] }}], backend: b }}\n"
        ));
    }
    let big = compile(&yaml);
    let router = big.listeners[0].chain.router();
    let mut last = request(&[("x-tenant", "t999")]);
    last.set_uri("/svc999/items".parse().expect("uri"));
    assert_eq!(
        run_filter(&rt, router, last.clone()).as_deref(),
        Some("r999")
    );
    bench_on(&mut group, "1000 routes, the last matches", &last, |r| {
        run_filter(&rt, router, r)
    });
    let none = request(&[]);
    bench_on(&mut group, "1000 routes, none matches", &none, |r| {
        run_filter(&rt, router, r)
    });
    group.finish();
}

fn identity(c: &mut Criterion) {
    let rt = runtime();
    let lab_cached = lab(true);
    let chain = &lab_cached.listeners[0].chain;
    let (jwt, transformation) = (&*chain.pre_routing()[0], &*chain.pre_routing()[1]);
    // Without a cache every token is verified: "not seen before", whatever the iteration count.
    let lab_uncached = lab(false);
    let uncached_chain = &lab_uncached.listeners[0].chain;
    let uncached_jwt = &*uncached_chain.pre_routing()[0];
    let token = token();
    let bearer = format!("Bearer {token}");

    let mut group = c.benchmark_group("jwt_authn");
    let with_token = request(&[("authorization", &bearer)]);
    bench_on(&mut group, "RS256, verified (no cache)", &with_token, |r| {
        run_filter(&rt, uncached_jwt, r)
    });
    bench_on(
        &mut group,
        "RS256, from the token cache",
        &with_token,
        |r| run_filter(&rt, jwt, r),
    );
    group.finish();

    // CEL alone: the claims are in the request state already.
    let mut group = c.benchmark_group("transformation");
    let mut state = RequestState::default();
    let mut verified = with_token.clone();
    {
        let mut ctx = RequestContext::new(&mut verified, Some(CLIENT), &mut state);
        rt.block_on(jwt.on_request(&mut ctx));
    }
    group.bench_function("x-tenant-version = jwt.version", |b| {
        b.iter_batched(
            || verified.clone(),
            |mut req| {
                let mut ctx = RequestContext::new(&mut req, Some(CLIENT), &mut state);
                rt.block_on(transformation.on_request(&mut ctx));
                req
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("pre_routing chain + router");
    assert_eq!(
        run_chain(&rt, chain, with_token.clone()).as_deref(),
        Some("tenant-v2")
    );
    bench_on(&mut group, "cached token", &with_token, |r| {
        run_chain(&rt, chain, r)
    });
    bench_on(&mut group, "token verified (no cache)", &with_token, |r| {
        run_chain(&rt, uncached_chain, r)
    });
    let plain = request(&[]);
    bench_on(&mut group, "no token", &plain, |r| run_chain(&rt, chain, r));
    group.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = routing, identity
}
criterion_main!(micro);
