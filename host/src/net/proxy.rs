//! Outbound proxies: which destinations go through one, and the HTTP
//! `CONNECT` tunnel through it.
//!
//! Policy (the conventions of curl and Go's `httpproxy`, where they agree):
//! - `https_proxy`/`HTTPS_PROXY` serves `https://` and `wss://`
//!   destinations, `http_proxy`/`HTTP_PROXY` serves `http://` and `ws://`;
//!   the lowercase name wins, an empty value is unset.
//! - A proxy is `http://[user:password@]host[:port]` (no scheme means
//!   `http://`; no port means 80). User and password go in a
//!   `Proxy-Authorization: Basic` header and are never logged. `https://`
//!   and SOCKS proxies are refused at start.
//! - `no_proxy`/`NO_PROXY`: comma-separated; `*` bypasses every proxy; a
//!   name bypasses it and every name below it (`example.com` and
//!   `.example.com` both cover `api.example.com`); an IP address or CIDR
//!   block bypasses it for destinations written as such addresses. Loopback
//!   is not bypassed on its own: list `localhost,127.0.0.1` to do that.
//! - Every destination goes through the tunnel, plain or TLS: TLS is spoken
//!   end to end inside it, so the proxy sees only `CONNECT host:port`. The
//!   proxy must allow `CONNECT` to the destination's port (Squid's default
//!   allows only 443).
//! - The proxy resolves the destination's name: the host does not resolve
//!   names that go through a proxy.

use std::net::IpAddr;
use std::str::FromStr;

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::policy::in_net;
use super::{NetError, authority};

use crate::config::net::MAX_PROXY_ANSWER_HEAD;

/// Which proxy, if any, each destination goes through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// For `https://` and `wss://` destinations.
    pub https: Option<ProxyUrl>,
    /// For `http://` and `ws://` destinations.
    pub http: Option<ProxyUrl>,
    /// Destinations that bypass both.
    pub no_proxy: NoProxy,
}

impl ProxyConfig {
    /// From the process environment (see the [module docs](self)).
    pub fn from_env() -> Result<Self, NetError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From variables looked up with `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, NetError> {
        let pick = |lower: &str, upper: &str| {
            [lower, upper].into_iter().find_map(|name| {
                var(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name.to_owned(), v))
            })
        };
        let proxy = |lower, upper| {
            pick(lower, upper)
                .map(|(name, value)| {
                    value
                        .parse::<ProxyUrl>()
                        .map_err(|why| NetError::Config { var: name, why })
                })
                .transpose()
        };
        Ok(Self {
            https: proxy("https_proxy", "HTTPS_PROXY")?,
            http: proxy("http_proxy", "HTTP_PROXY")?,
            no_proxy: pick("no_proxy", "NO_PROXY")
                .map(|(_, v)| NoProxy::parse(&v))
                .unwrap_or_default(),
        })
    }

    /// The proxy for `host` reached over `tls` (`https`/`wss`) or not.
    pub fn for_destination(&self, tls: bool, host: &str) -> Option<&ProxyUrl> {
        let proxy = if tls { &self.https } else { &self.http };
        proxy.as_ref().filter(|_| !self.no_proxy.bypasses(host))
    }
}

/// An HTTP proxy. Its `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    /// `base64(user:password)`, for `Proxy-Authorization: Basic`.
    auth: Option<String>,
}

impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", authority(&self.host, self.port))
    }
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUrl({self}")?;
        if self.auth.is_some() {
            f.write_str(", with credentials")?;
        }
        f.write_str(")")
    }
}

impl FromStr for ProxyUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let rest = match text.split_once("://") {
            None => text,
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "a `{scheme}://` proxy is not supported; give an `http://` proxy (HTTPS and WebSocket traffic is tunnelled through it with CONNECT)"
                ));
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (auth, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let pair = format!("{}:{}", percent_decode(user), percent_decode(password));
                (
                    Some(base64::engine::general_purpose::STANDARD.encode(pair)),
                    hostport,
                )
            }
            None => (None, authority),
        };
        let parsed: http::uri::Authority = hostport
            .parse()
            .map_err(|_| "not a proxy address like http://proxy.example.com:3128".to_string())?;
        let host = parsed.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("no proxy host".into());
        }
        Ok(Self {
            host: host.to_owned(),
            port: parsed.port_u16().unwrap_or(80),
            auth,
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|b| (*b as char).to_digit(16))
                .map(|d| d as u8)
        };
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The destinations that bypass the proxy (`NO_PROXY`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    entries: Vec<Bypass>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    /// This name and every name below it (lower case, no leading dot).
    Name(String),
    /// Addresses in this block.
    Net(IpAddr, u8),
}

impl NoProxy {
    /// Parses a `NO_PROXY` value. Entries that are neither names nor
    /// addresses are ignored, as curl does; ports on entries are ignored
    /// (the entry then covers every port).
    pub fn parse(text: &str) -> Self {
        let mut list = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                list.all = true;
                continue;
            }
            let (addr, prefix) = match entry.split_once('/') {
                Some((addr, prefix)) => (addr, prefix.parse::<u8>().ok()),
                None => (entry, None),
            };
            let bare = addr.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>() {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                list.entries
                    .push(Bypass::Net(ip, prefix.unwrap_or(max).min(max)));
                continue;
            }
            let name = match entry.rsplit_once(':') {
                Some((name, port)) if port.parse::<u16>().is_ok() => name,
                _ => entry,
            };
            let name = name.trim_start_matches('.').trim_end_matches('.');
            if !name.is_empty() {
                list.entries.push(Bypass::Name(name.to_ascii_lowercase()));
            }
        }
        list
    }

    /// Whether `host` (a name or an address, IPv6 with or without
    /// brackets) bypasses the proxy.
    pub fn bypasses(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = bare.parse::<IpAddr>().ok();
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        self.entries.iter().any(|entry| match (entry, ip) {
            (Bypass::Net(net, prefix), Some(ip)) => in_net(ip, *net, *prefix),
            (Bypass::Name(suffix), None) => {
                name == *suffix
                    || name
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            _ => false,
        })
    }
}

/// Opens a tunnel to `host:port` through `proxy`: `CONNECT`, then the
/// proxy's `2xx`. Bounded by the caller's deadline.
pub(super) async fn tunnel(proxy: &ProxyUrl, host: &str, port: u16) -> Result<TcpStream, NetError> {
    let failed = |why: String| NetError::Proxy {
        proxy: proxy.to_string(),
        why,
    };
    let mut tcp = super::tcp::connect_name(&proxy.host, proxy.port)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let target = authority(host.trim_start_matches('[').trim_end_matches(']'), port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.auth {
        request.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| failed(format!("sending CONNECT: {e}")))?;
    // Byte by byte: nothing past the answer's head may be consumed, it
    // belongs to the tunnel (and a head is a few dozen bytes, once per
    // connection).
    let mut head = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_PROXY_ANSWER_HEAD {
            return Err(failed("the answer to CONNECT is too long".into()));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => {
                return Err(failed(format!(
                    "closed the connection after CONNECT {target}"
                )));
            }
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(failed(format!("reading the answer to CONNECT: {e}"))),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    let code = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok());
    match code {
        Some(200..=299) => Ok(tcp),
        Some(407) => Err(failed(format!(
            "wants credentials (`{status_line}`): put them in the proxy URL, http://user:password@host:port"
        ))),
        _ => Err(failed(format!(
            "answered `{status_line}` to CONNECT {target}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn proxies_come_from_the_environment_lowercase_first() {
        let config = ProxyConfig::from_vars(vars(&[
            ("HTTPS_PROXY", "http://upper:3128"),
            ("https_proxy", "lower:8080"),
            ("HTTP_PROXY", "http://plain.example"),
            ("no_proxy", ""),
            ("NO_PROXY", "internal.example"),
        ]))
        .unwrap();
        assert_eq!(
            config.https.as_ref().unwrap().to_string(),
            "http://lower:8080"
        );
        assert_eq!(
            config.http.as_ref().unwrap().to_string(),
            "http://plain.example:80"
        );
        assert!(
            config
                .for_destination(true, "api.internal.example")
                .is_none()
        );
        assert!(config.for_destination(true, "x.livekit.cloud").is_some());
        assert_eq!(
            config
                .for_destination(false, "x.livekit.cloud")
                .unwrap()
                .host,
            "plain.example"
        );
        assert_eq!(
            ProxyConfig::from_vars(vars(&[])).unwrap(),
            ProxyConfig::default()
        );
    }

    #[test]
    fn unsupported_proxies_are_refused_naming_the_variable() {
        for bad in ["socks5://p:1080", "https://p:443", "http://", "http://a b"] {
            let err = ProxyConfig::from_vars(vars(&[("HTTPS_PROXY", bad)])).unwrap_err();
            assert!(err.to_string().contains("HTTPS_PROXY"), "{bad}: {err}");
        }
    }

    #[test]
    fn credentials_are_sent_but_never_shown() {
        let proxy: ProxyUrl = "http://us%40er:p%3Ass@proxy:3128/".parse().unwrap();
        assert_eq!(
            proxy.auth.as_deref(),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode("us@er:p:ss")
                    .as_str()
            )
        );
        let shown = format!("{proxy} {proxy:?}");
        assert!(
            !shown.contains("p:ss") && !shown.contains("us@er"),
            "{shown}"
        );
        assert!(shown.contains("with credentials"), "{shown}");
    }

    #[test]
    fn no_proxy_names_suffixes_addresses_and_blocks() {
        let list =
            NoProxy::parse(" example.com, .corp.example ,10.0.0.0/8, ::1, host:8080, bad/entry/x");
        assert!(list.bypasses("example.com"));
        assert!(list.bypasses("API.Example.com."));
        assert!(!list.bypasses("notexample.com"));
        assert!(list.bypasses("a.corp.example"));
        assert!(list.bypasses("corp.example"));
        assert!(list.bypasses("10.1.2.3"));
        assert!(!list.bypasses("11.0.0.1"));
        assert!(list.bypasses("[::1]"));
        assert!(list.bypasses("host"));
        // Names never match addresses, and loopback is not special.
        assert!(!list.bypasses("127.0.0.1"));
        assert!(!NoProxy::parse("localhost").bypasses("127.0.0.1"));
        assert!(NoProxy::parse("*").bypasses("anything"));
        assert!(!NoProxy::default().bypasses("anything"));
    }

    /// A one-shot proxy on loopback: reads the request head, answers
    /// `answer`, and hands back the head it read.
    async fn one_shot(answer: &'static str) -> (ProxyUrl, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://user:pw@{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap() == 1 {
                head.push(byte[0]);
            }
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(head).unwrap()
        });
        (url.parse().unwrap(), task)
    }

    #[tokio::test]
    async fn a_tunnel_asks_for_the_destination_with_credentials() {
        let (proxy, head) = one_shot("HTTP/1.1 200 Connection established\r\n\r\n").await;
        tunnel(&proxy, "[::1]", 443).await.unwrap();
        let head = head.await.unwrap();
        assert!(
            head.starts_with("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n"),
            "{head}"
        );
        let auth = base64::engine::general_purpose::STANDARD.encode("user:pw");
        assert!(
            head.contains(&format!("Proxy-Authorization: Basic {auth}\r\n")),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_refused_tunnel_says_why_without_the_password() {
        let (proxy, _) = one_shot("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").await;
        let err = tunnel(&proxy, "example.com", 443)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wants credentials") && !err.contains("pw"),
            "{err}"
        );
        let (proxy, _) = one_shot("HTTP/1.1 403 Forbidden\r\n\r\n").await;
        let err = tunnel(&proxy, "example.com", 7880)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`HTTP/1.1 403 Forbidden` to CONNECT example.com:7880"),
            "{err}"
        );
    }

    proptest::proptest! {
        /// Any text is a proxy or an error, and any NO_PROXY value a list,
        /// never a panic.
        #[test]
        fn parsing_never_panics(text in "\\PC{0,64}", host in "\\PC{0,32}") {
            let _ = text.parse::<ProxyUrl>();
            let _ = NoProxy::parse(&text).bypasses(&host);
        }
    }
}
