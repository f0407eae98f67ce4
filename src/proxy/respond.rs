//! Writing a [`LocalResponse`] to the client, and running response filters.

use std::net::IpAddr;

use http::header::CONTENT_LENGTH;
use http::Method;
use pingora::prelude::*;

use super::grpc;
use switchyard_filters::{
    FilterChain, LocalResponse, RequestHeader, RequestState, ResponseContext,
};

/// Adds the headers request filters asked for (`RequestContext::add_response_header`) to a
/// response header, then runs the chain's `response` filters on it.
pub async fn run_response_filters(
    chain: &FilterChain,
    header: &mut ResponseHeader,
    request: &RequestHeader,
    client_ip: Option<IpAddr>,
    state: &RequestState,
) {
    // Not on an interim 1xx; and each replaces a header of that name (the backend's own
    // RateLimit-*, say), so the client reads one value.
    if !header.status.is_informational() {
        for (name, value) in state.response_headers() {
            // Cannot fail: the name is a valid header name already.
            let _ = header.insert_header(name.clone(), value.clone());
        }
    }
    if !chain.has_response_filters() {
        return;
    }
    let mut ctx = ResponseContext::new(header, request, client_ip, state);
    chain.run_response(&mut ctx).await;
}

/// Sends `response` as the whole answer to the request; to a gRPC client, an error goes as a
/// gRPC status (see [`grpc`]), which is returned.
///
/// It always carries `content-length`: without it pingora 0.9 would send an unframed body on a
/// keep-alive connection and the client could not tell where the response ends.
pub async fn send(
    session: &mut Session,
    response: &LocalResponse,
    chain: &FilterChain,
    client_ip: Option<IpAddr>,
    state: &RequestState,
) -> Result<Option<u8>> {
    if response.status().as_u16() >= 400 && grpc::is_grpc(session.req_header()) {
        let answer = grpc::answer(response);
        let code = answer.code;
        send_grpc(session, answer, chain, client_ip, state).await?;
        return Ok(Some(code));
    }
    let mut header = response_header(response)?;
    header.insert_header(CONTENT_LENGTH, response.body().len())?;
    run_response_filters(chain, &mut header, session.req_header(), client_ip, state).await;

    let head_only = session.req_header().method == Method::HEAD || response.body().is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if head_only {
        // pingora ends an HTTP/2 stream only with its body: without this, a stream answered
        // by a header alone would be reset when the session is dropped.
        session.downstream_session.finish_body().await?;
    } else {
        session
            .write_response_body(Some(response.body().clone()), true)
            .await?;
    }
    Ok(None)
}

/// A gRPC answer: its header, then its status in trailers (HTTP/2), or all in the header
/// (a trailers-only response, on HTTP/1.1).
async fn send_grpc(
    session: &mut Session,
    answer: grpc::GrpcAnswer,
    chain: &FilterChain,
    client_ip: Option<IpAddr>,
    state: &RequestState,
) -> Result<()> {
    let mut header = response_header(&answer.header)?;
    let http2 = session.is_http2();
    if !http2 {
        for (name, value) in &answer.trailers {
            header.insert_header(name.clone(), value.clone())?;
        }
        header.insert_header(CONTENT_LENGTH, 0)?;
    }
    run_response_filters(chain, &mut header, session.req_header(), client_ip, state).await;
    session
        .write_response_header(Box::new(header), !http2)
        .await?;
    if http2 {
        session
            .downstream_session
            .write_response_trailers(answer.trailers)
            .await?;
    } else {
        session.downstream_session.finish_body().await?;
    }
    Ok(())
}

fn response_header(response: &LocalResponse) -> Result<ResponseHeader> {
    let mut header = ResponseHeader::build(response.status(), Some(response.headers().len() + 1))?;
    for (name, value) in response.headers() {
        header.append_header(name.clone(), value.clone())?;
    }
    Ok(header)
}
