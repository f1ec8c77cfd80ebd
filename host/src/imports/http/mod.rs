//! Outbound HTTP (`wasi:http/outgoing-handler`), the wasm side: the send
//! hook that takes a guest's request to the network, its `wasi:http`
//! errors, and what it holds charged to the job.
//!
//! Policy:
//! - Where a request may go is [`crate::net::policy`]'s: **an empty
//!   allow-list denies all**, a request passes when an `--allow-http` rule
//!   names its host and port, and then every address the host resolves to
//!   is checked (non-public ones need an IP or CIDR rule or
//!   `--allow-http-private`). The connection is opened by [`crate::net`]:
//!   resolved once, only to checked addresses, through a proxy when one
//!   applies (then the proxy resolves names; see [`crate::net::proxy`]).
//! - Only `http` and `https`.
//! - Request bodies above [`JobLimits::http_request_bytes`] and response
//!   bodies above [`JobLimits::http_response_bytes`] fail that request, not
//!   the job. Connecting (resolving, TCP, proxy, TLS and the HTTP
//!   handshake, all within one deadline), the first response byte and each
//!   gap between response bytes wait at most [`JobLimits::http_timeout`]; a
//!   guest may ask for less, never for more.
//! - What the host holds for a request in flight and a response body is
//!   charged to the job's host-memory budget (see `meter.rs`); a
//!   request the budget cannot take fails with `internal-error` and the
//!   job fails with the budget's reason.
//! - A denied request fails with `HTTP-request-denied` (no rule names the
//!   host) or `destination-IP-prohibited` (a non-public address), and the
//!   job's log gets a warning naming the host and the rule that applied.
//! - The operator's credentials ([`crate::net::credential`]) are added only
//!   after both checks passed, for the host and port checked, which are
//!   the ones connected to and the ones the `host` header names (the hook
//!   sets it from the checked authority, without userinfo; a guest cannot
//!   set it). A plain `http`
//!   request to port 443 gets none: it would carry the secret unencrypted
//!   to HTTPS's port. The host follows no redirect: the guest gets the
//!   3xx, and a request it then makes is checked, and given credentials,
//!   on its own.
//!
//! Invariants: the send hook in this module is the only path from a guest to
//! the network (WASI sockets and name lookup stay switched off); the only
//! credentials of the host it touches are the operator's, added to the
//! request on its way out: none is in a response, an error or a log line.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::Duration;

use http::uri::Scheme;
use http_body_util::BodyExt as _;
use tokio::time::{timeout, timeout_at};
use tracing::Instrument as _;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::bounded;
use crate::config::net::{
    BODY_CHUNK_BYTES, CONNECTION_BUFFER_BYTES, ENTRY_OVERHEAD, IN_FLIGHT_BYTES,
    RESPONSE_BUFFER_BYTES,
};
use crate::host_memory::{Charge, HostMemory, MemoryKind};
use crate::net::credential::Credentials;
use crate::net::policy::HttpAllowList;
use crate::net::{Capped, Deadline, Destination, NetError, Network};
use crate::runtime::limits::JobLimits;

mod meter;
pub(crate) use self::meter::HttpMeter;

/// Bytes a header map holds.
pub(crate) fn header_bytes(map: &http::HeaderMap) -> u64 {
    map.iter()
        .map(|(name, value)| ENTRY_OVERHEAD + name.as_str().len() as u64 + value.len() as u64)
        .sum()
}

/// The send hook of one job: its allow-list and caps.
#[derive(Clone)]
pub(crate) struct HttpPolicy {
    allow: Arc<HttpAllowList>,
    request_bytes: u64,
    response_bytes: u64,
    wait: Duration,
    network: Network,
    credentials: Credentials,
    memory: HostMemory,
}

impl HttpPolicy {
    pub(crate) fn new(limits: &JobLimits, memory: HostMemory) -> Self {
        Self {
            network: limits.network.clone(),
            allow: Arc::new(limits.http_allow.clone()),
            request_bytes: limits.http_request_bytes,
            response_bytes: limits.http_response_bytes,
            wait: limits.http_timeout,
            credentials: limits.credentials.clone(),
            memory,
        }
    }

    /// Charges `bytes` for `kind`, as a `wasi:http` error when refused.
    fn charge(&self, kind: MemoryKind, bytes: u64) -> Result<Charge, Error> {
        self.memory
            .charge(kind, bytes)
            .map_err(|over| Error::InternalError(Some(over.to_string())))
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        drop(fut);
        // The job's span, so that denials land in the job's log.
        let span = tracing::Span::current();
        Box::new(self.clone().send(request, options).instrument(span))
    }

    /// A cap hit while hyper streams a body (our [`Capped`] body's error,
    /// wrapped in hyper's) reaches the guest as that cap's error, e.g.
    /// `HTTP-request-body-size` for a chunked request body over the cap,
    /// not as the default `HTTP-protocol-error`.
    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> ErrorCode {
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            match cause.downcast_ref::<Error>() {
                Some(Error::HttpRequestBodySize(limit)) => {
                    return ErrorCode::HttpRequestBodySize(*limit);
                }
                Some(Error::HttpResponseBodySize(limit)) => {
                    return ErrorCode::HttpResponseBodySize(*limit);
                }
                _ => source = cause.source(),
            }
        }
        tracing::warn!(error = %bounded::display(err, bounded::MAX_LOG_FIELD), "outbound HTTP failed");
        ErrorCode::HttpProtocolError
    }

    // Small chunks keep what an unsent body holds on the host small; see
    // `meter.rs`.
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        BODY_CHUNK_BYTES
    }
}

/// Waits, each the host's cap or less if the guest asked for less.
struct Waits {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl HttpPolicy {
    async fn send(
        self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let cap = |asked: Option<Duration>| asked.map_or(self.wait, |a| a.min(self.wait));
        let options = options.unwrap_or_default();
        let waits = Waits {
            connect: cap(options.connect_timeout),
            first_byte: cap(options.first_byte_timeout),
            between_bytes: cap(options.between_bytes_timeout),
        };
        let uri = request.uri().clone();
        // Held until the response's headers are in.
        let in_flight = self.charge(
            MemoryKind::HttpRequests,
            IN_FLIGHT_BYTES + header_bytes(request.headers()) + uri.to_string().len() as u64,
        )?;
        let tls = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return Err(Error::HttpProtocolError),
        };
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let rule = match self.allow.rule_for(host, port) {
            Ok(rule) => rule,
            Err(rule) => {
                tracing::warn!(host = %bounded::log_field(host), port, rule, "outbound HTTP request denied");
                return Err(Error::HttpRequestDenied);
            }
        };
        // One deadline for resolving, connecting and the handshake.
        let deadline = Deadline::after(waits.connect);
        let destination = Destination { tls, host, port };
        let denied = |why: &str| {
            tracing::warn!(host = %bounded::log_field(host), port, matched = %rule, rule = %why, "outbound HTTP request denied");
            Error::DestinationIpProhibited
        };
        let route = match self
            .network
            .route(destination, &*self.allow, deadline)
            .await
        {
            Ok(route) => route,
            Err(NetError::Denied { why, .. }) => return Err(denied(&why)),
            Err(NetError::Timeout(_)) => return Err(Error::DnsTimeout),
            Err(err) => return Err(wasi_error(err)),
        };
        if content_length(request.headers()).is_some_and(|n| n > self.request_bytes) {
            return Err(Error::HttpRequestBodySize(Some(self.request_bytes)));
        }
        tracing::debug!(host = %bounded::log_field(host), port, %rule, "outbound HTTP request");
        // The `host` header names what was checked: wasmtime copies the
        // guest's authority whole, userinfo (`user@`) included.
        if let Some(checked) = uri
            .authority()
            .and_then(|a| a.as_str().rsplit('@').next())
            .and_then(|a| http::HeaderValue::from_str(a).ok())
        {
            request.headers_mut().insert(http::header::HOST, checked);
        }
        // Only now, checked: the host and port the connection goes to.
        self.credentials
            .apply(tls, host, port, request.headers_mut());
        let stream = self
            .network
            .connect(&route, deadline)
            .await
            .map(TokioIo::new)
            .map_err(wasi_error)?;
        let (mut sender, conn) = timeout_at(
            deadline.at(),
            hyper::client::conn::http1::Builder::new()
                .max_buf_size(CONNECTION_BUFFER_BYTES)
                .handshake(stream),
        )
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
        // The request line carries the path only; the host header is set.
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;
        let limit = self.request_bytes;
        let request = request.map(|body| {
            Capped::new(body, limit, Error::HttpRequestBodySize(Some(limit))).boxed_unsync()
        });
        let response_bytes = self.response_bytes;
        let response_charge = self.charge(MemoryKind::HttpResponses, RESPONSE_BUFFER_BYTES)?;
        let send = async move {
            let response = timeout(waits.first_byte, sender.send_request(request))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)??;
            if content_length(response.headers()).is_some_and(|n| n > response_bytes) {
                return Err(Error::HttpResponseBodySize(Some(response_bytes)));
            }
            Ok(response.map(|body| {
                Capped::new(
                    body,
                    response_bytes,
                    Error::HttpResponseBodySize(Some(response_bytes)),
                )
                .idle(waits.between_bytes, || Error::ConnectionReadTimeout)
                .holding(response_charge)
                .boxed_unsync()
            }))
        };
        // Drive the connection while waiting for the response; afterwards
        // the runtime drives it with the future handed back.
        let mut send = pin!(send);
        let mut conn = Some(conn);
        let response = poll_fn(|cx| match send.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => {
                let Some(c) = conn.as_mut() else {
                    return Poll::Pending;
                };
                let done = ready!(Pin::new(c).poll(cx));
                conn = None;
                match done {
                    Ok(()) => send.as_mut().poll(cx),
                    Err(err) => Poll::Ready(Err(Error::from(err))),
                }
            }
        })
        .await?;
        drop(in_flight);
        let io: IoFuture = Box::new(async move {
            match conn {
                Some(conn) => conn.await.map_err(Error::from),
                None => Ok(()),
            }
        });
        Ok((response, io))
    }
}

/// The `content-length` of a message, when it has one that parses.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The `wasi:http` error for a connection that failed.
fn wasi_error(err: NetError) -> Error {
    match err {
        NetError::Resolve { why, .. } => Error::DnsError {
            rcode: Some(why),
            info_code: None,
        },
        NetError::NoAddress(_) => Error::DestinationNotFound,
        NetError::Denied { .. } => Error::DestinationIpProhibited,
        NetError::Connect { err, .. } => Error::Connect(err),
        NetError::Tls { err, .. } => Error::Tls(err),
        NetError::Timeout(_) => Error::ConnectionTimeout,
        NetError::BadName(_) => Error::HttpRequestUriInvalid,
        err @ NetError::Proxy { .. } => Error::Connect(std::io::Error::other(err.to_string())),
        NetError::Ca(_) | NetError::Config { .. } => Error::ConfigurationError,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body::Frame;

    use super::*;

    /// A request body over the cap, sent by hyper as the send hook does,
    /// fails as `HTTP-request-body-size`, as SECURITY.md says.
    #[tokio::test]
    async fn a_streamed_request_body_over_the_cap_is_a_body_size_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut sink = Vec::new();
            // Reads until the client gives up on the body.
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut socket, &mut sink).await;
        });
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let chunks = futures::stream::iter(
            (0..4).map(|_| Ok::<_, Error>(Frame::data(Bytes::from(vec![b'x'; 8])))),
        );
        let body = Capped::new(
            http_body_util::StreamBody::new(chunks),
            16,
            Error::HttpRequestBodySize(Some(16)),
        );
        let request = http::Request::post("/upload")
            .header("host", "example.com")
            .body(body)
            .unwrap();
        let err = sender.send_request(request).await.unwrap_err();
        let mut policy = HttpPolicy::new(&JobLimits::default(), HostMemory::new(1 << 20));
        assert!(
            matches!(
                policy.p2_error_from_hyper(&err),
                ErrorCode::HttpRequestBodySize(Some(16))
            ),
            "{err:?}"
        );
        conn.abort();
        server.abort();
    }

    /// A server that accepts but never answers TLS ends the request with
    /// `connection-timeout` once the connect wait (one deadline for
    /// resolving, TCP, TLS and the handshake) is over.
    #[tokio::test]
    async fn a_server_silent_on_tls_is_a_connection_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            // Holds the socket open and says nothing.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(socket);
        });
        let limits = JobLimits {
            http_allow: HttpAllowList::parse([format!("127.0.0.1:{port}")], false).unwrap(),
            http_timeout: Duration::from_millis(300),
            ..JobLimits::default()
        };
        let policy = HttpPolicy::new(&limits, HostMemory::new(1 << 20));
        let body = http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        let request = http::Request::get(format!("https://127.0.0.1:{port}/"))
            .body(body)
            .unwrap();
        let sent = timeout(Duration::from_secs(30), policy.send(request, None))
            .await
            .expect("the connect wait ends the request");
        assert!(
            matches!(sent, Err(Error::ConnectionTimeout)),
            "{:?}",
            sent.err()
        );
        server.abort();
    }
}
