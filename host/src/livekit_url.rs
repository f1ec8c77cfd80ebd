//! The one reading of a LiveKit server URL, shared by the worker connection
//! (`/agent`) and the server API (Twirp).
//!
//! Rules (as LiveKit's SDKs take `LIVEKIT_URL`):
//! - the scheme is `ws`, `wss`, `http` or `https`, in any case; `ws` and
//!   `http` are plain, `wss` and `https` are TLS;
//! - a query or fragment is dropped; a path is kept as a prefix, without
//!   its trailing slashes;
//! - the authority must be a valid host with an optional numeric port; the
//!   port defaults to 443 with TLS and 80 without.
//!
//! The error is the reason only; each caller names the URL in its own terms.

/// A LiveKit server URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKitUrl {
    /// Whether the server is reached with TLS (`wss`, `https`).
    pub tls: bool,
    /// The authority as written (`host[:port]`, brackets kept).
    pub authority: String,
    /// The host, without the brackets of an IPv6 address.
    pub host: String,
    /// The port, or the scheme's default.
    pub port: u16,
    /// The path prefix, without a trailing slash; empty for none.
    pub prefix: String,
}

impl LiveKitUrl {
    /// Parses `url`; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            other => return Err(format!("unsupported scheme `{other}`")),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err("no host".into());
        }
        let parsed: http::uri::Authority = authority.parse().map_err(|_| "bad host")?;
        if parsed.host().is_empty() {
            return Err("no host".into());
        }
        // `http` takes `host:port` with any text after the colon; a port that
        // is no number would otherwise fall back to the default in silence.
        let after_host = authority
            .rsplit_once(']')
            .map_or(authority, |(_, rest)| rest);
        if let Some((_, port)) = after_host.rsplit_once(':')
            && port.parse::<u16>().is_err()
        {
            return Err("bad port".into());
        }
        Ok(Self {
            tls,
            authority: authority.to_owned(),
            host: parsed
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: parsed.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let url = LiveKitUrl::parse("HTTPS://x.livekit.cloud/prefix//?a=b#c").unwrap();
        assert_eq!(
            url,
            LiveKitUrl {
                tls: true,
                authority: "x.livekit.cloud".into(),
                host: "x.livekit.cloud".into(),
                port: 443,
                prefix: "/prefix".into(),
            }
        );
        let url = LiveKitUrl::parse("ws://[::1]:7880").unwrap();
        assert_eq!(
            (url.tls, url.authority.as_str(), url.host.as_str(), url.port),
            (false, "[::1]:7880", "::1", 7880)
        );
        assert_eq!(LiveKitUrl::parse("http://h/").unwrap().port, 80);
        assert_eq!(LiveKitUrl::parse("http://h/").unwrap().prefix, "");
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("localhost:7880", "no scheme"),
            ("ftp://h", "unsupported scheme `ftp`"),
            ("ws://", "no host"),
            ("ws:///x", "no host"),
            ("ws://a b", "bad host"),
            ("ws://h:notaport", "bad port"),
        ] {
            assert_eq!(LiveKitUrl::parse(url).unwrap_err(), why, "{url}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, parsing answers without panicking, and what
        /// it accepts has a host.
        #[test]
        fn parsing_never_panics(url in "\\PC{0,64}") {
            if let Ok(parsed) = LiveKitUrl::parse(&url) {
                proptest::prop_assert!(!parsed.host.is_empty());
            }
        }
    }
}
