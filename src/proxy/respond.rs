//! Writing a [`LocalResponse`] to the client, and running response filters.

use std::net::IpAddr;

use http::header::CONTENT_LENGTH;
use http::Method;
use pingora::prelude::*;
use switchyard_filters::{
    FilterChain, LocalResponse, RequestHeader, RequestState, ResponseContext,
};

/// Runs the chain's `response` filters on a response header.
pub async fn run_response_filters(
    chain: &FilterChain,
    header: &mut ResponseHeader,
    request: &RequestHeader,
    client_ip: Option<IpAddr>,
    state: &RequestState,
) {
    if !chain.has_response_filters() {
        return;
    }
    let mut ctx = ResponseContext::new(header, request, client_ip, state);
    chain.run_response(&mut ctx).await;
}

/// Sends `response` as the whole answer to the request.
///
/// It always carries `content-length`: without it pingora 0.9 would send an unframed body on a
/// keep-alive connection and the client could not tell where the response ends.
pub async fn send(
    session: &mut Session,
    response: &LocalResponse,
    chain: &FilterChain,
    client_ip: Option<IpAddr>,
    state: &RequestState,
) -> Result<()> {
    let mut header = ResponseHeader::build(response.status(), Some(response.headers().len() + 1))?;
    for (name, value) in response.headers() {
        header.append_header(name.clone(), value.clone())?;
    }
    header.insert_header(CONTENT_LENGTH, response.body().len())?;
    run_response_filters(chain, &mut header, session.req_header(), client_ip, state).await;

    let head_only = session.req_header().method == Method::HEAD || response.body().is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(response.body().clone()), true)
            .await?;
    }
    Ok(())
}
