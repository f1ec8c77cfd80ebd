//! Outbound HTTP (`wasi:http/outgoing-handler`): where a guest may send
//! requests, and how much.
//!
//! Policy:
//! - **An empty allow-list denies all.** That is the default; every
//!   destination must be granted with a rule (`--allow-http`).
//! - A rule is a host name (`api.example.com`), a wildcard (`*.example.com`:
//!   any name below it, not the name itself; `*`: any name), an IP address
//!   (`203.0.113.7`, `[2001:db8::1]`) or a CIDR block (`10.1.0.0/16`), each
//!   with an optional `:port`; without one, any port.
//! - Only `http` and `https`.
//! - The host resolves the name itself, checks **every** resolved address,
//!   and connects only to a checked address: the name is never resolved a
//!   second time, so DNS cannot swap in another address after the check.
//! - Through a proxy (`HTTPS_PROXY`/`HTTP_PROXY`, see [`crate::net::proxy`])
//!   the proxy resolves the name, so the host cannot pin addresses: the
//!   rules still decide which names and ports may be reached, and a
//!   destination written as an address is still checked below; a name
//!   that resolves to a non-public address at the proxy is the proxy's to
//!   refuse. `NO_PROXY` destinations are connected directly, with every
//!   check.
//! - Non-public addresses (loopback, private, link-local, shared/CGNAT,
//!   multicast, unspecified, documentation and reserved ranges, in IPv4,
//!   IPv6 and IPv4-mapped or NAT64 forms) are refused even behind an
//!   allowed name, unless an IP or CIDR rule names them or
//!   [`HttpAllowList::allow_private`] is set (`--allow-http-private`).
//! - Request bodies above [`JobLimits::http_request_bytes`] and response
//!   bodies above [`JobLimits::http_response_bytes`] fail that request, not
//!   the job. Connecting, the first response byte and each gap between
//!   response bytes wait at most [`JobLimits::http_timeout`]; a guest may
//!   ask for less, never for more.
//! - What the host holds for a request in flight and a response body is
//!   charged to the job's host-memory budget (see `http_meter.rs`); a
//!   request the budget cannot take fails with `internal-error` and the
//!   job fails with the budget's reason.
//! - A denied request fails with `HTTP-request-denied` (no rule names the
//!   host) or `destination-IP-prohibited` (a non-public address), and the
//!   job's log gets a warning naming the host and the rule that applied.
//!
//! Invariants: the send hook in this module is the only path from a guest to
//! the network (WASI sockets and name lookup stay switched off); nothing in
//! here holds a credential of the host.

use std::fmt;
use std::future::{Future, poll_fn};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::time::{Instant, Sleep, sleep, timeout};
use tracing::Instrument as _;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::bounded;
use crate::host_memory::{Charge, HostMemory, MemoryKind};
use crate::limits::JobLimits;
use crate::net::{NetError, Network};

/// Largest chunk a guest writes into an outgoing body at once (the
/// `p2_outgoing_body_chunk_size` hook); with wasmtime-wasi-http's one
/// buffered chunk, what an unsent body holds on the host.
pub(crate) const BODY_CHUNK_BYTES: usize = 64 << 10;

/// hyper's read and write buffer cap per connection (`max_buf_size`; its
/// minimum is 8 KiB, its default ~400 KiB).
pub(crate) const CONNECTION_BUFFER_BYTES: usize = 64 << 10;

/// What a response body holds on the host besides its headers: the
/// connection's read buffer and one frame handed on to the guest.
pub(crate) const RESPONSE_BUFFER_BYTES: u64 = 2 * CONNECTION_BUFFER_BYTES as u64;

/// What a request in flight holds besides its headers and URI: the
/// connection's buffers and one body chunk.
pub(crate) const IN_FLIGHT_BYTES: u64 =
    2 * CONNECTION_BUFFER_BYTES as u64 + BODY_CHUNK_BYTES as u64;

/// Bookkeeping of one header or entry (`http::HeaderMap` stores a name, a
/// value and links per entry), on top of its bytes.
pub(crate) const ENTRY_OVERHEAD: u64 = 64;

/// Bytes a header map holds.
pub(crate) fn header_bytes(map: &http::HeaderMap) -> u64 {
    map.iter()
        .map(|(name, value)| ENTRY_OVERHEAD + name.as_str().len() as u64 + value.len() as u64)
        .sum()
}

/// Where outbound HTTP may go: a list of [`HttpRule`]s, and whether
/// non-public addresses are reachable through them. See the
/// [module docs](self) for the policy.
///
/// ```
/// use agent_host::HttpAllowList;
/// let list = HttpAllowList::parse(["api.example.com", "*.cdn.example.com:443"], false).unwrap();
/// assert_eq!(list.rules().len(), 2);
/// assert!(HttpAllowList::default().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAllowList {
    rules: Vec<HttpRule>,
    /// Let allowed names reach non-public addresses (loopback, private
    /// networks, ...). Off by default; IP and CIDR rules do not need it.
    pub allow_private: bool,
}

impl HttpAllowList {
    /// A list of `rules`.
    pub fn new(rules: impl IntoIterator<Item = HttpRule>, allow_private: bool) -> Self {
        Self {
            rules: rules.into_iter().collect(),
            allow_private,
        }
    }

    /// A list of `rules` (see [`HttpRule`] for the syntax).
    pub fn parse<I, S>(rules: I, allow_private: bool) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let rules = rules
            .into_iter()
            .map(|r| r.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(Self {
            rules,
            allow_private,
        })
    }

    /// The rules, in the order given.
    pub fn rules(&self) -> &[HttpRule] {
        &self.rules
    }

    /// Whether no request at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that lets a request to `host:port` through the name
    /// check.
    fn rule_for(&self, host: &Target, port: u16) -> Option<&HttpRule> {
        self.rules.iter().find(|r| r.matches(host, port))
    }

    /// Whether a connection to `addr` may be made; the reason when not.
    fn check_address(&self, addr: SocketAddr) -> Result<(), String> {
        let Some(kind) = non_public(addr.ip()) else {
            return Ok(());
        };
        if self.allow_private {
            return Ok(());
        }
        let named = self.rules.iter().any(|r| match &r.host {
            Pattern::Net(net, prefix) => {
                r.port.is_none_or(|p| p == addr.port())
                    && (in_net(addr.ip(), *net, *prefix)
                        || in_net(canonical(addr.ip()), *net, *prefix))
            }
            _ => false,
        });
        if named {
            Ok(())
        } else {
            Err(format!(
                "{} is a {kind} address; allow it with an IP or CIDR rule or --allow-http-private",
                addr.ip()
            ))
        }
    }
}

/// One entry of an [`HttpAllowList`]: `name`, `*.suffix`, `*`, an IP
/// address or a CIDR block, with an optional `:port` (IPv6 addresses with a
/// port in brackets: `[::1]:8080`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRule {
    host: Pattern,
    port: Option<u16>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Exactly this name (lower case, no trailing dot).
    Name(String),
    /// Any name ending in this suffix (which starts with a dot).
    Below(String),
    /// Any name or address.
    Any,
    /// An address in this block.
    Net(IpAddr, u8),
}

/// The host a request names.
enum Target {
    Name(String),
    Ip(IpAddr),
}

impl Target {
    fn parse(host: &str) -> Self {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse() {
            Ok(ip) => Target::Ip(ip),
            Err(_) => Target::Name(host.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

impl HttpRule {
    fn matches(&self, host: &Target, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.host, host) {
            (Pattern::Any, _) => true,
            (Pattern::Name(name), Target::Name(host)) => name == host,
            (Pattern::Below(suffix), Target::Name(host)) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
            (Pattern::Net(net, prefix), Target::Ip(ip)) => {
                in_net(*ip, *net, *prefix) || in_net(canonical(*ip), *net, *prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for HttpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for HttpRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let bad = |why: &str| format!("bad --allow-http rule `{text}`: {why}");
        let parse_port = |p: &str| match p.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(bad("the port must be a number from 1 to 65535")),
        };
        let rule = |host, port| HttpRule {
            host,
            port,
            text: text.clone(),
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        // CIDR block, with an optional port after the prefix length.
        if let Some((addr, rest)) = text.split_once('/') {
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let (prefix, port) = match rest.split_once(':') {
                Some((prefix, port)) => (prefix, Some(parse_port(port)?)),
                None => (rest, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .trim_end_matches(']')
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad("bad prefix length"))?;
            return Ok(rule(Pattern::Net(addr, prefix), port));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(rule(Pattern::Net(ip, full_prefix(ip)), None));
        }
        if let Ok(sa) = text.parse::<SocketAddr>() {
            let port = parse_port(&sa.port().to_string())?;
            return Ok(rule(
                Pattern::Net(sa.ip(), full_prefix(sa.ip())),
                Some(port),
            ));
        }
        if let Some(v6) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let ip: IpAddr = v6.parse().map_err(|_| bad("not an IPv6 address"))?;
            return Ok(rule(Pattern::Net(ip, 128), None));
        }
        let (name, port) = match text.rsplit_once(':') {
            Some((name, port)) => (name, Some(parse_port(port)?)),
            None => (text.as_str(), None),
        };
        // One trailing dot (a fully qualified name) is the same name.
        let (name, dotted) = match name.strip_suffix('.') {
            Some(name) => (name, true),
            None => (name, false),
        };
        let valid = |n: &str| {
            !n.is_empty()
                && n.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        };
        let host = if name == "*" && !dotted {
            Pattern::Any
        } else if let Some(suffix) = name.strip_prefix("*.") {
            if !valid(suffix) {
                return Err(bad("not a host name after `*.`"));
            }
            Pattern::Below(format!(".{suffix}"))
        } else if valid(name) {
            Pattern::Name(name.to_owned())
        } else {
            return Err(bad("not a host name, `*.domain`, IP address or CIDR block"));
        };
        Ok(rule(host, port))
    }
}

fn full_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Whether `ip` is in `net/prefix` (never across address families).
pub(crate) fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64 and
/// 6to4 forms), else the address itself.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let bits = u128::from(v6);
    let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    if in_net(ip, IpAddr::V6(nat64), 96) {
        return IpAddr::V4(Ipv4Addr::from(bits as u32));
    }
    if v6.segments()[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32));
    }
    ip
}

/// What kind of non-public address `ip` is; `None` for a public one.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    let v4_blocks: [(Ipv4Addr, u8, &str); 14] = [
        (Ipv4Addr::new(0, 0, 0, 0), 8, "unspecified"),
        (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
        (Ipv4Addr::new(100, 64, 0, 0), 10, "shared (CGNAT)"),
        (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
        (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
        (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
        (Ipv4Addr::new(192, 0, 0, 0), 24, "reserved"),
        (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
        (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
        (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
        (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
        (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
        (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
        (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
    ];
    let v6_blocks: [(Ipv6Addr, u8, &str); 8] = [
        (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
        (Ipv6Addr::LOCALHOST, 128, "loopback"),
        (Ipv6Addr::UNSPECIFIED, 96, "reserved (IPv4-compatible)"),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            "reserved (discard)",
        ),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            "documentation",
        ),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            "private (unique local)",
        ),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
    ];
    match canonical(ip) {
        IpAddr::V4(v4) => v4_blocks
            .iter()
            .find(|(net, prefix, _)| in_net(IpAddr::V4(v4), IpAddr::V4(*net), *prefix))
            .map(|(_, _, kind)| *kind),
        IpAddr::V6(v6) => v6_blocks
            .iter()
            .find(|(net, prefix, _)| in_net(IpAddr::V6(v6), IpAddr::V6(*net), *prefix))
            .map(|(_, _, kind)| *kind),
    }
}

/// The send hook of one job: its allow-list and caps.
#[derive(Clone)]
pub(crate) struct HttpPolicy {
    allow: Arc<HttpAllowList>,
    request_bytes: u64,
    response_bytes: u64,
    wait: Duration,
    network: Network,
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
    // `http_meter.rs`.
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
        let target = Target::parse(host);
        let Some(rule) = self.allow.rule_for(&target, port) else {
            let rule = if self.allow.is_empty() {
                "the outbound allow-list is empty, which denies all"
            } else {
                "no --allow-http rule names this host and port"
            };
            tracing::warn!(host = %bounded::log_field(host), port, rule, "outbound HTTP request denied");
            return Err(Error::HttpRequestDenied);
        };
        // Direct: resolve once, check every address, connect only to those.
        // Through a proxy, the proxy resolves: an address is still checked,
        // a name only against the rules (see the module docs).
        let proxied = self.network.proxy_for(tls, host).is_some();
        let addrs = match (&target, proxied) {
            (Target::Ip(ip), true) => vec![SocketAddr::new(*ip, port)],
            (Target::Name(_), true) => Vec::new(),
            (_, false) => resolve(&target, port, waits.connect).await?,
        };
        for addr in &addrs {
            if let Err(why) = self.allow.check_address(*addr) {
                tracing::warn!(host = %bounded::log_field(host), port, matched = %rule, rule = %why, "outbound HTTP request denied");
                return Err(Error::DestinationIpProhibited);
            }
        }
        if content_length(request.headers()).is_some_and(|n| n > self.request_bytes) {
            return Err(Error::HttpRequestBodySize(Some(self.request_bytes)));
        }
        tracing::debug!(host = %bounded::log_field(host), port, %rule, "outbound HTTP request");
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let direct = (!proxied).then_some(addrs.as_slice());
        let stream = self
            .network
            .open(tls, name, port, direct, waits.connect)
            .await
            .map(TokioIo::new)
            .map_err(wasi_error)?;
        let (mut sender, conn) = timeout(
            waits.connect,
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
            Capped::new(body, limit, Error::HttpRequestBodySize(Some(limit)), None).boxed_unsync()
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
                    Some(waits.between_bytes),
                )
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

/// Every address of `host`, resolved once, within `wait`.
async fn resolve(host: &Target, port: u16, wait: Duration) -> Result<Vec<SocketAddr>, Error> {
    let name = match host {
        Target::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
        Target::Name(name) => name.as_str(),
    };
    let found = timeout(wait, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|e| Error::DnsError {
            rcode: Some(e.to_string()),
            info_code: None,
        })?;
    let addrs: Vec<SocketAddr> = found.collect();
    if addrs.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    Ok(addrs)
}

/// The `wasi:http` error for a connection that failed.
fn wasi_error(err: NetError) -> Error {
    match err {
        NetError::Resolve { why, .. } => Error::DnsError {
            rcode: Some(why),
            info_code: None,
        },
        NetError::Connect { err, .. } => Error::Connect(err),
        NetError::Tls { err, .. } => Error::Tls(err),
        NetError::Timeout(_) => Error::ConnectionTimeout,
        NetError::BadName(_) => Error::HttpRequestUriInvalid,
        err @ NetError::Proxy { .. } => Error::Connect(std::io::Error::other(err.to_string())),
        NetError::Ca(_) | NetError::Config { .. } => Error::ConfigurationError,
    }
}

/// A body that fails once more than `limit` bytes went through, and (for
/// responses) when no frame came for `idle`.
struct Capped<B> {
    inner: B,
    seen: u64,
    limit: u64,
    over: Option<Error>,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    /// The host memory this body's buffers hold, given back with the body.
    _charge: Option<Charge>,
}

impl<B> Capped<B> {
    fn new(inner: B, limit: u64, over: Error, idle: Option<Duration>) -> Self {
        Self {
            inner,
            seen: 0,
            limit,
            over: Some(over),
            idle: idle.map(|d| (d, Box::pin(sleep(d)))),
            _charge: None,
        }
    }

    /// Keeps `charge` for as long as the body lives.
    fn holding(mut self, charge: Charge) -> Self {
        self._charge = Some(charge);
        self
    }
}

impl<B> Body for Capped<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Error>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        // `over` is taken when the cap is hit: the body is over then.
        if this.over.is_none() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.limit {
                        return Poll::Ready(this.over.take().map(Err));
                    }
                }
                if let Some((idle, timer)) = &mut this.idle {
                    timer.as_mut().reset(Instant::now() + *idle);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match &mut this.idle {
                Some((_, timer)) => {
                    ready!(timer.as_mut().poll(cx));
                    Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
                }
                None => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> HttpAllowList {
        HttpAllowList::parse(rules, false).unwrap()
    }

    fn allows(list: &HttpAllowList, host: &str, port: u16) -> bool {
        list.rule_for(&Target::parse(host), port).is_some()
    }

    #[test]
    fn empty_list_denies_all() {
        let empty = HttpAllowList::default();
        assert!(!allows(&empty, "example.com", 443));
        assert!(!allows(&empty, "127.0.0.1", 80));
    }

    #[test]
    fn names_wildcards_and_ports() {
        let l = list(&["api.example.com", "*.cdn.example.net:443", "Other.Org."]);
        assert!(allows(&l, "api.example.com", 80));
        assert!(allows(&l, "API.example.com.", 8080));
        assert!(!allows(&l, "example.com", 443));
        assert!(!allows(&l, "evilapi.example.com", 443));
        assert!(allows(&l, "a.cdn.example.net", 443));
        assert!(allows(&l, "a.b.cdn.example.net", 443));
        assert!(!allows(&l, "a.cdn.example.net", 80));
        assert!(!allows(&l, "cdn.example.net", 443));
        assert!(!allows(&l, "xcdn.example.net", 443));
        assert!(allows(&l, "other.org", 1));
        // Names never match addresses and the other way round.
        assert!(!allows(&list(&["127.0.0.1"]), "localhost", 80));
        assert!(!allows(&list(&["localhost"]), "127.0.0.1", 80));
    }

    #[test]
    fn addresses_and_blocks() {
        let l = list(&[
            "127.0.0.1:8080",
            "10.1.0.0/16",
            "[::1]:9000",
            "fd00::/8:443",
        ]);
        assert!(allows(&l, "127.0.0.1", 8080));
        assert!(!allows(&l, "127.0.0.1", 8081));
        assert!(allows(&l, "10.1.200.3", 5));
        assert!(!allows(&l, "10.2.0.1", 5));
        assert!(allows(&l, "[::1]", 9000));
        assert!(allows(&l, "[fd12::1]", 443));
        assert!(!allows(&l, "[fd12::1]", 80));
        // An IPv4-mapped address is its IPv4 address.
        assert!(allows(&l, "[::ffff:10.1.0.1]", 1));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "",
            "a b",
            "*.",
            "ex*ample.com",
            "x:0",
            "x:70000",
            "10.0.0.0/33",
            "1.2.3/8",
            "[::1",
            "http://x",
        ] {
            assert!(bad.parse::<HttpRule>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn private_addresses_need_an_explicit_rule() {
        let by_name = list(&["localhost", "*"]);
        for addr in [
            "127.0.0.1:80",
            "[::1]:80",
            "10.0.0.1:80",
            "172.16.5.4:80",
            "192.168.1.1:80",
            "169.254.169.254:80",
            "100.64.0.1:80",
            "0.0.0.0:80",
            "224.0.0.1:80",
            "255.255.255.255:80",
            "[fe80::1]:80",
            "[fc00::1]:80",
            "[ff02::1]:80",
            "[::]:80",
            "[::ffff:127.0.0.1]:80",
            "[::ffff:169.254.169.254]:80",
            "[64:ff9b::a00:1]:80",
            "[2002:7f00:1::]:80",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert!(by_name.check_address(addr).is_err(), "{addr} allowed");
            let opted = HttpAllowList::parse(["localhost"], true).unwrap();
            assert!(opted.check_address(addr).is_ok());
        }
        for public in ["93.184.216.34:443", "[2606:4700::1111]:443", "8.8.8.8:53"] {
            assert!(by_name.check_address(public.parse().unwrap()).is_ok());
        }
        let explicit = list(&["127.0.0.0/8", "[::1]:8080"]);
        assert!(
            explicit
                .check_address("127.0.0.9:1".parse().unwrap())
                .is_ok()
        );
        assert!(
            explicit
                .check_address("[::1]:8080".parse().unwrap())
                .is_ok()
        );
        assert!(
            explicit
                .check_address("[::1]:8081".parse().unwrap())
                .is_err()
        );
        assert!(
            explicit
                .check_address("10.0.0.1:1".parse().unwrap())
                .is_err()
        );
    }

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
            None,
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

    #[tokio::test]
    async fn bodies_over_the_cap_fail() {
        let body = |n: usize| http_body_util::Full::new(Bytes::from(vec![b'x'; n]));
        let over = Error::HttpRequestBodySize(Some(8));
        let capped = Capped::new(body(9), 8, over, None).collect().await;
        assert!(matches!(capped, Err(Error::HttpRequestBodySize(Some(8)))));
        let over = Error::HttpRequestBodySize(Some(8));
        let capped = Capped::new(body(8), 8, over, None).collect().await;
        assert_eq!(capped.unwrap().to_bytes().len(), 8);
    }

    proptest::proptest! {
        /// Any text is a rule or an error, never a panic.
        #[test]
        fn rule_parsing_never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<HttpRule>();
        }

        /// Every address in 127/8, 10/8 and fe80::/10 counts as non-public.
        #[test]
        fn private_ranges(a in 0u8.., b in 0u8.., c in 0u8.., seg in 0u16..) {
            proptest::prop_assert!(non_public(IpAddr::V4(Ipv4Addr::new(127, a, b, c))).is_some());
            proptest::prop_assert!(non_public(IpAddr::V4(Ipv4Addr::new(10, a, b, c))).is_some());
            proptest::prop_assert!(non_public(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, seg, 0, 0, 1))).is_some());
        }
    }
}
