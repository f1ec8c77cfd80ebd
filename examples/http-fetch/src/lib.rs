//! HTTP fetch: fetches a URL through outbound HTTP (`wasi:http`) and reports
//! the status and the start of the body into the room as chat text.
//!
//! - Job metadata that is an `http://` or `https://` URL: fetch it once at
//!   start, report, and end the job (failed, with the reason, if the fetch
//!   failed).
//! - Otherwise: every chat message (`lk.chat`) that is such a URL is
//!   fetched and answered to its sender, until the room closes.
//!
//! The host only lets requests through to destinations on its allow-list
//! (`--allow-http`); everything else fails with `HttpRequestDenied` or
//! `DestinationIpProhibited`, which is what gets reported then.

use agent_host_sdk::{Agent, CHAT_TOPIC, JobContext, RoomEvent, TextOptions};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Most body bytes shown in a report.
const EXCERPT: usize = 200;

/// Most body bytes read (the host caps it too).
const MAX_BODY: usize = 1 << 20;

struct HttpFetch;

impl Agent for HttpFetch {
    fn run(ctx: JobContext) -> Result<(), String> {
        let room = ctx.room();
        let metadata = ctx.info().metadata;
        if is_url(&metadata) {
            let report = fetch(metadata.trim());
            let text = match &report {
                Ok(summary) => summary.clone(),
                Err(err) => format!("error: {err}"),
            };
            room.send_text(&text)?;
            return report.map(|_| ());
        }
        for event in room.events() {
            if let RoomEvent::TextReceived(msg) = event {
                if msg.topic != CHAT_TOPIC || !is_url(&msg.text) {
                    continue;
                }
                let text = fetch(msg.text.trim()).unwrap_or_else(|err| format!("error: {err}"));
                room.send_text_with(
                    &text,
                    TextOptions {
                        topic: CHAT_TOPIC.to_owned(),
                        destinations: vec![msg.sender],
                    },
                )?;
            }
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(HttpFetch);

fn is_url(text: &str) -> bool {
    let text = text.trim();
    text.starts_with("http://") || text.starts_with("https://")
}

/// `GET url`: `"<status> <excerpt>"`, or why it failed.
fn fetch(url: &str) -> Result<String, String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = match scheme {
        "https" => Scheme::Https,
        _ => Scheme::Http,
    };
    let fail = |what: &str| format!("fetch {url}: {what}");
    request
        .set_method(&Method::Get)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(&path)))
        .map_err(|()| fail("the host refused the URL"))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| fail(&format!("{e:?}")))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or_else(|| fail("no response"))?
        .map_err(|()| fail("response taken twice"))?
        .map_err(|e| fail(&format!("{e:?}")))?;
    let status = response.status();
    let body = response.consume().map_err(|()| fail("no body"))?;
    let stream = body.stream().map_err(|()| fail("no body stream"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY {
                    return Err(fail("body too large"));
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => {
                let code = wasip2::http::types::http_error_code(&err)
                    .map(|c| format!("{c:?}"))
                    .unwrap_or_else(|| err.to_debug_string());
                return Err(fail(&format!("reading the body: {code}")));
            }
        }
    }
    drop(stream);
    let text = String::from_utf8_lossy(&bytes);
    let excerpt: String = text.chars().take(EXCERPT).collect();
    Ok(format!("{status} {excerpt}"))
}
