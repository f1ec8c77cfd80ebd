//! Opening a socket: the guest's URL and options checked, the upgrade
//! request built, then the way out through [`crate::net`] and the
//! handshake, within one deadline.
//!
//! Policy: what `connect` can check at once (the URL, the headers, the
//! subprotocols, the allow-list's rules by name) it checks before anything
//! runs; the rest (resolving, every address checked, TCP, the proxy, TLS on
//! the network's roots, the upgrade) runs in the socket's task under one
//! [`Deadline`]. Errors name the destination and the rule, never a header
//! value.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::uri::Uri;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Error as WsError};

use super::WebSocketPolicy;
use crate::bindings::agent_host::agent::websocket::{ConnectOptions, WebsocketError};
use crate::bounded;
use crate::config::net::WEBSOCKET_READ_BUFFER_BYTES;
use crate::imports::http::header_bytes;
use crate::net::{Connection, Deadline, Destination, NetError};

/// A socket's destination, checked by name: what the task dials.
pub(crate) struct Dial {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The allow-list rule that named the destination, for the log.
    pub(crate) rule: String,
    pub(crate) request: Request,
    pub(crate) wait: Duration,
}

impl Dial {
    /// Bytes the upgrade request holds until the handshake is over.
    pub(crate) fn request_bytes(&self) -> u64 {
        header_bytes(self.request.headers()) + self.request.uri().to_string().len() as u64
    }
}

/// Headers of the upgrade request that the host writes itself (RFC 6455
/// section 4.1 and tungstenite), or that would give the `GET` a body.
const HOST_HEADERS: [&str; 5] = [
    "host",
    "connection",
    "upgrade",
    "content-length",
    "transfer-encoding",
];

/// Checks `url` and `options` against `policy`: a [`Dial`] for the task,
/// or the error `connect` returns at once.
pub(crate) fn check(
    policy: &WebSocketPolicy,
    url: &str,
    options: ConnectOptions,
) -> Result<Dial, WebsocketError> {
    let invalid = |why: String| WebsocketError::Invalid(why);
    let uri: Uri = url
        .parse()
        .map_err(|err| invalid(format!("not a URL: {err}")))?;
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err(invalid("not a ws:// or wss:// URL".into())),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| invalid("the URL has no host".into()))?;
    if authority.as_str().contains('@') {
        return Err(invalid("the URL carries credentials; use a header".into()));
    }
    let host = authority.host().to_owned();
    if host.is_empty() {
        return Err(invalid("the URL has no host".into()));
    }
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let rule = match policy.allow.rule_for(&host, port) {
        Ok(rule) => rule,
        Err(why) => {
            tracing::warn!(host = %bounded::log_field(&host), port, rule = why, "outbound WebSocket denied");
            return Err(WebsocketError::Denied(format!(
                "{}:{port}: {why}",
                bounded::log_field(&host)
            )));
        }
    };
    let request = upgrade_request(uri, &options)?;
    let wait = options.timeout_ms.map_or(policy.wait, |ms| {
        Duration::from_millis(ms.into()).min(policy.wait)
    });
    Ok(Dial {
        tls,
        host,
        port,
        rule: rule.to_string(),
        request,
        wait,
    })
}

/// The upgrade request for `uri`: the host's RFC 6455 headers, then the
/// guest's, then its subprotocols. The one place the request is built.
fn upgrade_request(uri: Uri, options: &ConnectOptions) -> Result<Request, WebsocketError> {
    let invalid = |why: String| WebsocketError::Invalid(why);
    let mut request = uri
        .into_client_request()
        .map_err(|err| invalid(format!("not a WebSocket URL: {err}")))?;
    let headers = request.headers_mut();
    for (name, value) in &options.headers {
        let shown = bounded::log_field(name);
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("`{shown}` is not a header name")))?;
        if HOST_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("sec-websocket-") {
            return Err(invalid(format!(
                "the host sets `{name}` itself; subprotocols go in `subprotocols`"
            )));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("the value of `{name}` is not a header value")))?;
        headers.append(name, value);
    }
    if !options.subprotocols.is_empty() {
        for protocol in &options.subprotocols {
            let token = !protocol.is_empty()
                && protocol
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !token {
                return Err(invalid(format!(
                    "subprotocol `{}` is not a token",
                    bounded::log_field(protocol)
                )));
            }
        }
        let offered = HeaderValue::from_str(&options.subprotocols.join(", "))
            .map_err(|_| invalid("the subprotocols are not a header value".into()))?;
        headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, offered);
    }
    // The operator's credentials are added in `open`, once every address
    // was checked.
    Ok(request)
}

/// An open socket and the subprotocol the server chose.
pub(crate) type Open = (WebSocketStream<Box<dyn Connection>>, Option<String>);

/// Resolves, checks every address, connects, speaks TLS and upgrades,
/// within `dial.wait`.
pub(crate) async fn open(
    policy: &WebSocketPolicy,
    mut dial: Dial,
    config: WebSocketConfig,
) -> Result<Open, WebsocketError> {
    let deadline = Deadline::after(dial.wait);
    let destination = Destination {
        tls: dial.tls,
        host: &dial.host,
        port: dial.port,
    };
    let shown = bounded::log_field(&dial.host);
    let stream = match policy
        .network
        .dial(destination, &*policy.allow, deadline)
        .await
    {
        Ok(stream) => stream,
        Err(NetError::Denied { addr, why }) => {
            tracing::warn!(host = %shown, port = dial.port, matched = %dial.rule, rule = %why, "outbound WebSocket denied");
            return Err(WebsocketError::Denied(format!(
                "{shown}:{} resolves to {addr}: {why}",
                dial.port
            )));
        }
        Err(err) => return Err(net_error(err)),
    };
    tracing::debug!(host = %shown, port = dial.port, rule = %dial.rule, "outbound WebSocket");
    // Only now, every address checked and connected to: the host and port
    // the request goes to.
    policy
        .credentials
        .apply(dial.tls, &dial.host, dial.port, dial.request.headers_mut());
    let handshake = tokio_tungstenite::client_async_with_config(dial.request, stream, Some(config));
    let (socket, response) = tokio::time::timeout_at(deadline.at(), handshake)
        .await
        .map_err(|_| WebsocketError::Timeout)?
        .map_err(handshake_error)?;
    let protocol = response
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((socket, protocol))
}

/// tungstenite's settings for a socket whose messages are capped at
/// `message` bytes.
pub(crate) fn config(message: u64) -> WebSocketConfig {
    let message = usize::try_from(message).unwrap_or(usize::MAX);
    WebSocketConfig::default()
        .read_buffer_size(WEBSOCKET_READ_BUFFER_BYTES)
        // Each message is written as it is sent: nothing waits in
        // tungstenite's buffer beyond the host's own queue.
        .write_buffer_size(0)
        .max_message_size(Some(message))
        .max_frame_size(Some(message))
}

/// The guest's error for a connection that could not be opened.
fn net_error(err: NetError) -> WebsocketError {
    match err {
        NetError::Timeout(_) => WebsocketError::Timeout,
        err => WebsocketError::ConnectFailed(bounded::display(err, bounded::MAX_LOG_FIELD)),
    }
}

/// The guest's error for a failed upgrade.
fn handshake_error(err: WsError) -> WebsocketError {
    match err {
        WsError::Http(response) => WebsocketError::Rejected(response.status().as_u16()),
        err @ WsError::Protocol(
            tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(_),
        ) => WebsocketError::Failed(err.to_string()),
        err => WebsocketError::ConnectFailed(bounded::display(err, bounded::MAX_LOG_FIELD)),
    }
}
