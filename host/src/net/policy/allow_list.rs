//! The outbound allow-list: its grammar, and which destinations and
//! addresses it lets through.
//!
//! Policy:
//! - **An empty allow-list denies all.** That is the default; every
//!   destination must be granted with a rule (`--allow-http`).
//! - A rule is a host name (`api.example.com`), a wildcard (`*.example.com`:
//!   any name below it, not the name itself; `*`: any name), an IP address
//!   (`203.0.113.7`, `[2001:db8::1]`) or a CIDR block (`10.1.0.0/16`), each
//!   with an optional `:port`; without one, any port. Names match names
//!   only and addresses addresses only; case and one trailing dot do not
//!   matter.
//! - Non-public addresses (the classes of `egress.rs`) are refused even
//!   behind an allowed name, unless an IP or CIDR rule names them or
//!   [`HttpAllowList::allow_private`] is set (`--allow-http-private`).
//!
//! Invariant: parsing and matching only; no I/O, no name resolution.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::egress::{Egress, canonical, full_prefix, in_net, non_public};

/// Where outbound HTTP may go: a list of [`HttpRule`]s, and whether
/// non-public addresses are reachable through them: an empty list denies
/// everything, and loopback, private and the other non-public ranges are
/// refused behind a name unless an IP or CIDR rule, or
/// `allow_private`, lets them through (SECURITY.md has the whole policy).
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
    /// check (`host` as a URI gives it: a name, an IPv4 address or a
    /// bracketed IPv6 address); else why none does, for the denial.
    pub(crate) fn rule_for(&self, host: &str, port: u16) -> Result<&HttpRule, &'static str> {
        let host = Target::parse(host);
        self.rules
            .iter()
            .find(|r| r.matches(&host, port))
            .ok_or(if self.rules.is_empty() {
                "the outbound allow-list is empty, which denies all"
            } else {
                "no --allow-http rule names this host and port"
            })
    }
}

/// An address behind an allowed destination may be reached when it is
/// public, when an IP or CIDR rule names it, or with `allow_private`.
impl Egress for HttpAllowList {
    fn check(&self, addr: SocketAddr) -> Result<(), String> {
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
    /// Whether a request to `host:port` (as [`HttpAllowList::rule_for`]
    /// takes them) is one this rule names.
    pub(crate) fn allows(&self, host: &str, port: u16) -> bool {
        self.matches(&Target::parse(host), port)
    }

    /// This rule, on `port` when it names none (a rule with a port keeps
    /// it).
    pub(crate) fn or_port(self, port: u16) -> Self {
        if self.port.is_some() {
            return self;
        }
        let text = match &self.host {
            Pattern::Net(ip, prefix) if ip.is_ipv6() && *prefix == 128 => format!("[{ip}]:{port}"),
            _ => format!("{}:{port}", self.text),
        };
        Self {
            port: Some(port),
            text,
            ..self
        }
    }

    /// Whether this rule names the same destinations as `other`: the same
    /// pattern and port, however either was written.
    pub(crate) fn same_as(&self, other: &HttpRule) -> bool {
        self.host == other.host && self.port == other.port
    }

    /// Whether some request could match both this rule and `other`.
    pub(crate) fn overlaps(&self, other: &HttpRule) -> bool {
        if self.port.zip(other.port).is_some_and(|(a, b)| a != b) {
            return false;
        }
        let below = |name: &str, suffix: &str| name.len() > suffix.len() && name.ends_with(suffix);
        match (&self.host, &other.host) {
            (Pattern::Any, _) | (_, Pattern::Any) => true,
            (Pattern::Name(a), Pattern::Name(b)) => a == b,
            (Pattern::Name(name), Pattern::Below(suffix))
            | (Pattern::Below(suffix), Pattern::Name(name)) => below(name, suffix),
            (Pattern::Below(a), Pattern::Below(b)) => {
                a.ends_with(b.as_str()) || b.ends_with(a.as_str())
            }
            (Pattern::Net(a, pa), Pattern::Net(b, pb)) => {
                // Two blocks overlap when the wider one holds the other's
                // base address.
                in_net(*a, *b, *pb) || in_net(*b, *a, *pa)
            }
            _ => false,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> HttpAllowList {
        HttpAllowList::parse(rules, false).unwrap()
    }

    fn allows(list: &HttpAllowList, host: &str, port: u16) -> bool {
        list.rule_for(host, port).is_ok()
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
            assert!(by_name.check(addr).is_err(), "{addr} allowed");
            let opted = HttpAllowList::parse(["localhost"], true).unwrap();
            assert!(opted.check(addr).is_ok());
        }
        for public in ["93.184.216.34:443", "[2606:4700::1111]:443", "8.8.8.8:53"] {
            assert!(by_name.check(public.parse().unwrap()).is_ok());
        }
        let explicit = list(&["127.0.0.0/8", "[::1]:8080"]);
        assert!(explicit.check("127.0.0.9:1".parse().unwrap()).is_ok());
        assert!(explicit.check("[::1]:8080".parse().unwrap()).is_ok());
        assert!(explicit.check("[::1]:8081".parse().unwrap()).is_err());
        assert!(explicit.check("10.0.0.1:1".parse().unwrap()).is_err());
    }

    proptest::proptest! {
        /// Any text is a rule or an error, never a panic.
        #[test]
        fn rule_parsing_never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<HttpRule>();
        }
    }
}
