//! Opening the WebSocket to `<url>/agent`.
//!
//! Policy:
//! - the URL is read by [`LiveKitUrl`] (one reading for the worker and the
//!   server API); it keeps any path prefix and gains `/agent`; `http(s)`
//!   becomes `ws(s)`;
//! - LiveKit Cloud's worker token goes in the `worker_token` query
//!   parameter, as the official workers send it; errors name the target
//!   without the query, so the token stays out of logs;
//! - every attempt carries a fresh worker token in `Authorization`;
//! - the connection goes through the worker's [`Network`]: a `CONNECT`
//!   proxy when one applies, TLS with the built-in roots plus private CAs;
//!   opening it (TCP, proxy, TLS, upgrade) takes at most
//!   [`CONNECT_TIMEOUT`];
//! - a 401 at the upgrade is [`ConnectError::Unauthorized`]; a deployment
//!   the server would refuse is refused before any connection is made.

use std::time::SystemTime;

use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::ConnectError;
use super::auth::{WORKER_TOKEN_TTL, worker_token};
use super::codec::{MAX_FRAME, Socket};
use super::register::validate_deployment;
use crate::livekit_url::LiveKitUrl;
use crate::net::Network;

pub use crate::config::worker::CONNECT_TIMEOUT;

use crate::config::worker::READ_BUFFER;

/// `<url>/agent` with a WebSocket scheme, keeping any path prefix.
pub fn agent_url(url: &str) -> Result<String, ConnectError> {
    let parsed =
        LiveKitUrl::parse(url).map_err(|why| ConnectError::BadUrl(url.to_string(), why))?;
    let scheme = if parsed.tls { "wss" } else { "ws" };
    Ok(format!(
        "{scheme}://{}{}/agent",
        parsed.authority, parsed.prefix
    ))
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved
/// characters).
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where and as whom a worker connects: the parts of its options the wire
/// needs, so that the wire knows nothing of dispatch.
#[derive(Clone)]
pub(crate) struct Dial {
    /// LiveKit server URL, as configured.
    pub url: String,
    /// API key (the JWT's issuer).
    pub api_key: String,
    /// API secret (signs the JWT).
    pub api_secret: String,
    /// Deployment name, checked before connecting.
    pub deployment: String,
    /// LiveKit Cloud's worker token, sent as a query parameter.
    pub worker_token: Option<String>,
    /// Proxy and TLS roots.
    pub network: Network,
}

/// Opens the WebSocket with a fresh token, through the worker's network.
pub(crate) async fn connect(o: &Dial) -> Result<Socket, ConnectError> {
    validate_deployment(&o.deployment).map_err(ConnectError::BadSetting)?;
    let target = agent_url(&o.url)?;
    let token = worker_token(&o.api_key, &o.api_secret, WORKER_TOKEN_TTL)?;
    let with_query = match &o.worker_token {
        Some(worker_token) => format!("{target}?worker_token={}", encode_query_value(worker_token)),
        None => target.clone(),
    };
    let mut request = with_query
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::BadUrl(o.url.clone(), e.to_string()))?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| ConnectError::Other(e.to_string()))?;
    request.headers_mut().insert("Authorization", auth);
    let uri = request.uri().clone();
    let tls = uri.scheme_str() == Some("wss");
    // An IPv6 address without its brackets, as the network takes hosts.
    let host = uri
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .ok_or_else(|| ConnectError::BadUrl(o.url.clone(), "no host".into()))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    // The target in errors carries no query: the worker token stays out of logs.
    let open = async {
        let stream = open_stream(&o.network, tls, host, port)
            .await
            .map_err(|e| ConnectError::Other(format!("connecting to {target}: {e}")))?;
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|err| upgrade_error(err, &target))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
        Ok(result) => result.map(|(socket, _response)| socket),
        Err(_) => Err(ConnectError::Other(format!(
            "connecting to {target}: no WebSocket within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// TCP (direct or through the proxy), then TLS for `wss://`.
async fn open_stream(
    network: &Network,
    tls: bool,
    host: &str,
    port: u16,
) -> Result<MaybeTlsStream<TcpStream>, crate::net::NetError> {
    let tcp = network.tcp(tls, host, port).await?;
    Ok(if tls {
        MaybeTlsStream::Rustls(network.tls(tcp, host).await?)
    } else {
        MaybeTlsStream::Plain(tcp)
    })
}

fn upgrade_error(err: tungstenite::Error, target: &str) -> ConnectError {
    match err {
        tungstenite::Error::Http(response) if response.status() == 401 => {
            ConnectError::Unauthorized {
                now: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            }
        }
        tungstenite::Error::Http(response) => ConnectError::Other(format!(
            "the server answered HTTP {} instead of upgrading to a WebSocket",
            response.status()
        )),
        err => ConnectError::Other(format!("connecting to {target}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_urls() {
        assert_eq!(
            agent_url("http://localhost:7880").unwrap(),
            "ws://localhost:7880/agent"
        );
        assert_eq!(
            agent_url("https://x.livekit.cloud/").unwrap(),
            "wss://x.livekit.cloud/agent"
        );
        assert_eq!(agent_url("wss://h/prefix").unwrap(), "wss://h/prefix/agent");
        assert_eq!(
            agent_url("ws://h/prefix/?a=b").unwrap(),
            "ws://h/prefix/agent"
        );
        assert!(agent_url("localhost:7880").is_err());
        assert!(agent_url("ftp://h").is_err());
        assert!(agent_url("ws://").is_err());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query_value("a+b/c=d e"), "a%2Bb%2Fc%3Dd%20e");
        assert_eq!(encode_query_value("tok-1._~"), "tok-1._~");
    }

    #[tokio::test]
    async fn a_tls_url_fails_cleanly_against_a_plain_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            // Accept and hang up: no TLS here.
            let _ = listener.accept().await;
        });
        let dial = Dial {
            url: format!("wss://127.0.0.1:{port}"),
            api_key: "k".into(),
            api_secret: "s".into(),
            deployment: String::new(),
            worker_token: None,
            network: Network::default(),
        };
        let err = connect(&dial).await.err().unwrap();
        assert!(matches!(err, ConnectError::Other(_)), "{err}");
    }

    proptest::proptest! {
        /// Any URL either maps to a `/agent` WebSocket URL or is refused, never a panic.
        #[test]
        fn agent_url_never_panics(url in "\\PC{0,64}") {
            if let Ok(agent) = agent_url(&url) {
                proptest::prop_assert!(agent.starts_with("ws://") || agent.starts_with("wss://"));
                proptest::prop_assert!(agent.ends_with("/agent"));
            }
        }
    }
}
