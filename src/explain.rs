//! `switchyard explain`: runs a listener's request chain on a described request, offline, and
//! says what each filter did and why, which route won and which backend it goes to. It answers
//! "why did my request land on latest?" without sending traffic anywhere.

use std::fmt::Write;
use std::net::IpAddr;

use switchyard_filters::headers::CREDENTIAL_HEADERS;
use switchyard_filters::validate::unknown;
use switchyard_filters::{
    ChainObserver, Filter, Flow, RequestContext, RequestHeader, RequestState,
};

use crate::pipeline::Pipeline;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// A listener the config does not have: the message lists those it has.
    #[error("{0}")]
    UnknownListener(String),
    #[error("`{0}` is not a header: write 'name: value'")]
    BadHeader(String),
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("cannot start the evaluator: {0}")]
    Runtime(std::io::Error),
}

/// The request to explain.
pub struct Described<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [String],
    pub token: Option<&'a str>,
    pub client: IpAddr,
    pub listener: Option<&'a str>,
}

fn header_lines(req: &RequestHeader) -> Vec<String> {
    let mut lines: Vec<String> = req
        .headers
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes());
            // Credentials are shown shortened: enough to tell two apart, not enough to reuse.
            if CREDENTIAL_HEADERS.contains(&n.as_str()) && value.len() > 24 {
                let cut = value.char_indices().nth(20).map_or(value.len(), |(i, _)| i);
                format!("{n}: {}... ({} bytes)", &value[..cut], value.len())
            } else {
                format!("{n}: {value}")
            }
        })
        .collect();
    lines.sort();
    lines
}

/// Writes, for each filter as the chain runs it, what it noted and the header lines it
/// removed and added.
struct Report<'o> {
    out: &'o mut String,
    step: usize,
    before: Vec<String>,
}

impl ChainObserver for Report<'_> {
    fn before(&mut self, _filter: &dyn Filter, ctx: &RequestContext<'_>) {
        self.before = header_lines(ctx.request());
    }

    fn after(&mut self, filter: &dyn Filter, ctx: &mut RequestContext<'_>, _flow: &Flow) {
        let after = header_lines(ctx.request());
        self.step += 1;
        let out = &mut *self.out;
        let _ = writeln!(out, "{}. {}", self.step, filter.name());
        for note in ctx.take_notes() {
            let _ = writeln!(out, "     {note}");
        }
        for gone in self.before.iter().filter(|l| !after.contains(l)) {
            let _ = writeln!(out, "     - {gone}");
        }
        for new in after.iter().filter(|l| !self.before.contains(l)) {
            let _ = writeln!(out, "     + {new}");
        }
    }
}

/// Runs the chain and returns the report.
pub fn explain(pipeline: &Pipeline, request: &Described<'_>) -> Result<String, ExplainError> {
    let listener = match request.listener {
        None => &pipeline.listeners[0],
        Some(name) => pipeline
            .listeners
            .iter()
            .find(|l| &*l.name == name)
            .ok_or_else(|| {
                let names = pipeline.listeners.iter().map(|l| &*l.name);
                ExplainError::UnknownListener(unknown("listener", name, names))
            })?,
    };
    let mut req = RequestHeader::build(request.method, request.path.as_bytes(), None)
        .map_err(|e| ExplainError::BadRequest(e.to_string()))?;
    for h in request.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| ExplainError::BadHeader(h.clone()))?;
        req.append_header(name.trim().to_owned(), value.trim())
            .map_err(|_| ExplainError::BadHeader(h.clone()))?;
    }
    if let Some(token) = request.token {
        req.insert_header("authorization", format!("Bearer {token}"))
            .map_err(|e| ExplainError::BadRequest(e.to_string()))?;
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} on listener {} ({}), from {}",
        request.method, request.path, listener.name, listener.address, request.client
    );
    for line in header_lines(&req) {
        let _ = writeln!(out, "  {line}");
    }

    // Filters are async; a runtime on this thread runs them, with I/O and timers for those
    // that ask a server (a rate limit's state in Redis).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ExplainError::Runtime)?;
    let mut state = RequestState::default();
    let mut report = Report {
        out: &mut out,
        step: 0,
        before: Vec::new(),
    };
    let flow = {
        let mut ctx = RequestContext::new(&mut req, Some(request.client), &mut state).traced();
        runtime.block_on(listener.chain.run_request_observed(&mut ctx, &mut report))
    };
    match flow {
        Flow::Respond(response) => {
            let _ = writeln!(
                out,
                "=> answered by the gateway: {} {}",
                response.status().as_u16(),
                String::from_utf8_lossy(response.body())
            );
        }
        // The chain continues only once the router has chosen a route.
        Flow::Continue => {
            if let Some(route) = state.route() {
                let backend = &pipeline.backends[route.backend.index];
                let _ = writeln!(
                    out,
                    "=> route {} -> backend {} ({})",
                    route.route,
                    backend.name,
                    backend
                        .config
                        .endpoint
                        .host_list()
                        .into_iter()
                        .map(|(h, _)| match crate::backend::literal_address(&h.host) {
                            Some(ip) => std::net::SocketAddr::new(ip, h.port).to_string(),
                            None => format!("{}:{}", h.host, h.port),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(out)
}
