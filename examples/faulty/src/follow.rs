//! `http-follow`: what a guest can see of the operator's credentials, and
//! a guest that follows redirects itself.
//!
//! Sends its own `Authorization` (an SDK written for a provider does), so
//! tests can check the host's value replaces it; reports every response
//! whole (status, every header, the body) and every error, so tests can
//! check none of them holds a secret.

use agent_host_sdk::JobContext;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingResponse, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 3;

/// Most body bytes read and reported.
const MAX_BODY: usize = 16 << 10;

/// The guest's own `Authorization`.
const GUEST_AUTHORIZATION: &str = "Bearer from-the-guest";

pub fn run(ctx: &JobContext, url: &str) -> Result<(), String> {
    let room = ctx.room();
    let mut url = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        match get(&url) {
            Ok((report, location)) => {
                room.send_text(&report)?;
                match location {
                    Some(next) => url = next,
                    None => return Ok(()),
                }
            }
            Err(err) => {
                room.send_text(&format!("error: {err}"))?;
                return Ok(());
            }
        }
    }
    room.send_text("error: too many redirects")?;
    Ok(())
}

/// `GET url` with the guest's `Authorization`: the whole response as
/// text, and where a 3xx points.
fn get(url: &str) -> Result<(String, Option<String>), String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let headers = Fields::new();
    headers
        .append("authorization", GUEST_AUTHORIZATION.as_bytes())
        .map_err(|e| format!("the host refused the header: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_method(&Method::Get)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)))
        .map_err(|()| "the host refused the URL".to_owned())?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response")?
        .map_err(|()| "response taken twice")?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let mut location = None;
    let mut report = format!("{status}");
    for (name, value) in response.headers().entries() {
        let value = String::from_utf8_lossy(&value).into_owned();
        if name.eq_ignore_ascii_case("location") && (300..400).contains(&status) {
            location = Some(value.clone());
        }
        report.push_str(&format!("\n{name}: {value}"));
    }
    report.push_str("\n\n");
    report.push_str(&body(response)?);
    Ok((report, location))
}

/// The body, up to [`MAX_BODY`] bytes, as text.
fn body(response: IncomingResponse) -> Result<String, String> {
    let body = response.consume().map_err(|()| "no body")?;
    let stream = body.stream().map_err(|()| "no body stream")?;
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY {
        match stream.blocking_read(4096) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => {
                let code = wasip2::http::types::http_error_code(&err)
                    .map(|c| format!("{c:?}"))
                    .unwrap_or_else(|| err.to_debug_string());
                return Err(format!("reading the body: {code}"));
            }
        }
    }
    bytes.truncate(MAX_BODY);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
