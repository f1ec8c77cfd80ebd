//! Credentials the guest never sees: headers the host adds to a guest's
//! outbound requests for the destinations the operator configured.
//!
//! Policy:
//! - A [`Credential`] is a destination, a header name and a value. The
//!   destination is written in the allow-list's grammar
//!   ([`HttpRule`]: `api.example.com`, `*.example.com`, an IP address or
//!   a CIDR block, with an optional `:port`). **Without a port a
//!   credential is for port 443 only** (HTTPS), not for any port as an
//!   allow-list rule: a secret goes to another port, such as 80 in plain
//!   text, only when the operator names that port.
//! - The value is a template read **once**, when the credential is built:
//!   `{env:NAME}` is the environment variable `NAME`, `{file:PATH}` the
//!   content of the file `PATH` with its trailing newlines trimmed, any
//!   other text is kept (`{{` and `}}` are literal braces). A template
//!   needs at least one `{env:}` or `{file:}`: a secret does not belong in
//!   a config file or on a command line. A missing or empty variable or
//!   file, an invalid header name or value is an error that names the
//!   credential and the variable or file, never the value.
//! - The value is held as an [`http::HeaderValue`] marked sensitive, in a
//!   wrapper whose `Debug` and `Display` print `[redacted]`; nothing in
//!   here logs or formats it.
//! - [`Credentials::apply`] adds every credential whose destination names
//!   the request's host and port. **A header the guest set itself under a
//!   credential's name is replaced by the operator's value** (a debug log
//!   line names the header, never a value): an SDK written for a provider
//!   sets its own `Authorization`, often a placeholder, and refusing the
//!   request would break it, while replacing it never sends the guest's
//!   value to a destination the operator keeps a secret for.
//! - Several credentials may apply to one request (two headers); two for
//!   the same header whose destinations overlap are refused when the list
//!   is built, so which value is sent never depends on order.
//!
//! Invariant: no I/O apart from reading a secret when a credential is
//! built; the caller applies credentials only to a request that passed
//! the allow-list and address checks, for the host and port it checked.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use super::policy::{HttpAllowList, HttpRule};

/// The port of a credential whose destination names none: HTTPS's, so a
/// secret never goes out in plain text unless the operator names the port.
const DEFAULT_CREDENTIAL_PORT: u16 = 443;

/// Whether a request may carry credentials at all: every one over TLS, a
/// plain one unless it goes to [`DEFAULT_CREDENTIAL_PORT`], where it would
/// carry unencrypted a secret the operator meant for HTTPS.
fn may_carry(tls: bool, port: u16) -> bool {
    tls || port != DEFAULT_CREDENTIAL_PORT
}

/// Headers a credential may not set: the host sets them from what it
/// checked (`host`), or they frame the message and the connection.
const RESERVED: [HeaderName; 8] = [
    http::header::HOST,
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
    http::header::CONNECTION,
    http::header::UPGRADE,
    http::header::TE,
    http::header::TRAILER,
    http::header::PROXY_AUTHORIZATION,
];

/// Why a credential cannot be used. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(String);

/// A header value the guest must never see: sensitive, and printed as
/// `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
struct Secret(HeaderValue);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One header for one destination, its value read when it was built.
///
/// ```
/// use agent_host::net::credential::Credential;
/// let dir = tempfile::tempdir().unwrap();
/// let key = dir.path().join("key");
/// std::fs::write(&key, "sk-test\n").unwrap();
/// let template = format!("Bearer {{file:{}}}", key.display());
/// let credential = Credential::new("api.openai.com", "Authorization", &template).unwrap();
/// assert_eq!(credential.destination().to_string(), "api.openai.com:443");
/// assert!(!format!("{credential:?}").contains("sk-test"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    destination: HttpRule,
    header: HeaderName,
    value: Secret,
}

impl Credential {
    /// A credential for `destination` (allow-list grammar; no port = 443)
    /// that sets `header` to `template` with its `{env:NAME}` and
    /// `{file:PATH}` read now.
    pub fn new(destination: &str, header: &str, template: &str) -> Result<Self, CredentialError> {
        Self::with_env(destination, header, template, |name| std::env::var_os(name))
    }

    /// [`Credential::new`], with `env` in place of the process environment.
    pub fn with_env(
        destination: &str,
        header: &str,
        template: &str,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, CredentialError> {
        let destination = destination
            .parse::<HttpRule>()
            .map_err(|why| CredentialError(format!("credential destination: {why}")))?
            .or_port(DEFAULT_CREDENTIAL_PORT);
        let label = format!("the credential `{}` for {destination}", header.trim());
        let bad = |why: String| CredentialError(format!("{label}: {why}"));
        let header = HeaderName::from_str(header.trim())
            .map_err(|_| bad("not a valid header name".into()))?;
        if RESERVED.contains(&header) {
            return Err(bad(format!(
                "`{header}` is set by the host and cannot be a credential"
            )));
        }
        let text = render(template, &env).map_err(bad)?;
        let mut value = HeaderValue::from_bytes(&text).map_err(|_| {
            bad("the value is not a valid header value (it holds a control character such as a newline)".into())
        })?;
        value.set_sensitive(true);
        Ok(Self {
            destination,
            header,
            value: Secret(value),
        })
    }

    /// Where this credential is sent (always with a port).
    pub fn destination(&self) -> &HttpRule {
        &self.destination
    }

    /// The header it sets.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }
}

/// `DESTINATION=HEADER: TEMPLATE`, the `--credential` form, e.g.
/// `api.openai.com=Authorization: Bearer {env:OPENAI_API_KEY}`.
impl FromStr for Credential {
    type Err = CredentialError;

    fn from_str(text: &str) -> Result<Self, CredentialError> {
        let form = "use DESTINATION=HEADER: VALUE, e.g. `api.openai.com=Authorization: Bearer {env:OPENAI_API_KEY}`";
        let (destination, rest) = text
            .split_once('=')
            .ok_or_else(|| CredentialError(format!("bad credential: no `=`; {form}")))?;
        let (header, template) = rest
            .split_once(':')
            .ok_or_else(|| CredentialError(format!("bad credential: no `:`; {form}")))?;
        Self::new(destination, header, template.trim_start())
    }
}

/// The template's text with every `{env:}` and `{file:}` read. The error
/// names the variable or file, never what it holds.
fn render(template: &str, env: &impl Fn(&str) -> Option<OsString>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut sources = 0;
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(b'{');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix("}}") {
            out.push(b'}');
            rest = after;
            continue;
        }
        let Some((field, after)) = tail.strip_prefix('{').and_then(|t| t.split_once('}')) else {
            return Err(
                "an unmatched brace in the value (write `{{` and `}}` for literal braces)".into(),
            );
        };
        let read = match field.split_once(':') {
            Some(("env", name)) if !name.is_empty() => {
                let value = env(name).ok_or_else(|| format!("the variable {name} is not set"))?;
                value
                    .into_string()
                    .map_err(|_| format!("the variable {name} is not UTF-8"))?
                    .into_bytes()
            }
            Some(("file", path)) if !path.is_empty() => {
                let path = PathBuf::from(path);
                let mut bytes = std::fs::read(&path)
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                    bytes.pop();
                }
                bytes
            }
            _ => {
                return Err(format!(
                    "`{{{field}}}` in the value is not `{{env:NAME}}` or `{{file:PATH}}`"
                ));
            }
        };
        if read.is_empty() {
            return Err(format!("`{{{field}}}` is empty"));
        }
        out.extend_from_slice(&read);
        sources += 1;
        rest = after;
    }
    out.extend_from_slice(rest.as_bytes());
    if sources == 0 {
        return Err("the value reads no secret: put the secret in a variable or a file and write `{env:NAME}` or `{file:PATH}`, not the secret itself".into());
    }
    Ok(out)
}

/// The credentials of one worker's jobs; cheap to clone. Its `Debug`
/// shows destinations and header names, never values.
///
/// ```
/// use agent_host::net::credential::{Credential, Credentials};
/// let env = |_: &str| Some("k".into());
/// let one = Credential::with_env("api.example.com", "Authorization", "Bearer {env:K}", env).unwrap();
/// let two = Credential::with_env("*.example.com", "authorization", "{env:K}", env).unwrap();
/// // Both would set `authorization` for api.example.com.
/// assert!(Credentials::new([one, two]).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    list: Arc<[Credential]>,
}

impl Credentials {
    /// The credentials `list`; two for the same header whose destinations
    /// overlap are an error.
    pub fn new(list: impl IntoIterator<Item = Credential>) -> Result<Self, CredentialError> {
        let list: Vec<Credential> = list.into_iter().collect();
        for (i, a) in list.iter().enumerate() {
            if let Some(b) = list[..i]
                .iter()
                .find(|b| b.header == a.header && b.destination.overlaps(&a.destination))
            {
                let how = if b.destination.same_as(&a.destination) {
                    "the same destination".to_owned()
                } else {
                    format!(
                        "overlapping destinations ({} and {})",
                        b.destination, a.destination
                    )
                };
                return Err(CredentialError(format!(
                    "two credentials set `{}` for {how}: keep one, or give them destinations that do not overlap",
                    a.header
                )));
            }
        }
        Ok(Self { list: list.into() })
    }

    /// The credentials, in the order given.
    pub fn list(&self) -> &[Credential] {
        &self.list
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The credentials no rule of `allow` lets a request reach: they can
    /// never apply.
    pub fn unreachable<'a>(
        &'a self,
        allow: &'a HttpAllowList,
    ) -> impl Iterator<Item = &'a Credential> + 'a {
        self.list
            .iter()
            .filter(|c| !allow.rules().iter().any(|r| r.overlaps(&c.destination)))
    }

    /// Adds to `headers` every credential whose destination names `host`
    /// and `port` (as [`HttpAllowList::rule_for`] takes them), replacing a
    /// header of the same name the guest set; none to a plain (`tls`
    /// false) request to the HTTPS port ([`may_carry`]). For a request
    /// that passed the allow-list and address checks for that host and
    /// port.
    pub(crate) fn apply(&self, tls: bool, host: &str, port: u16, headers: &mut http::HeaderMap) {
        if !may_carry(tls, port) {
            return;
        }
        for credential in self
            .list
            .iter()
            .filter(|c| c.destination.allows(host, port))
        {
            if headers.remove(&credential.header).is_some() {
                tracing::debug!(
                    header = %credential.header,
                    "a header the guest set was replaced by the operator's credential"
                );
            }
            headers.insert(credential.header.clone(), credential.value.0.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn env(name: &str) -> Option<OsString> {
        match name {
            "KEY" => Some("sk-live-123".into()),
            "ORG" => Some("org-7".into()),
            "EMPTY" => Some("".into()),
            _ => None,
        }
    }

    /// `Authorization: Bearer sk-live-123` for `api.example.com`.
    fn bearer_for_api() -> Credentials {
        Credentials::new([credential(
            "api.example.com",
            "Authorization",
            "Bearer {env:KEY}",
        )])
        .unwrap()
    }

    fn credential(destination: &str, header: &str, template: &str) -> Credential {
        Credential::with_env(destination, header, template, env).unwrap()
    }

    fn error(destination: &str, header: &str, template: &str) -> String {
        Credential::with_env(destination, header, template, env)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn templates_read_variables_and_files() {
        let c = credential("api.example.com", "Authorization", "Bearer {env:KEY}");
        assert_eq!(c.value.0, "Bearer sk-live-123");
        assert!(c.value.0.is_sensitive());
        let c = credential("x.com", "X-Both", "{{{env:ORG}}}/{env:KEY}");
        assert_eq!(c.value.0, "{org-7}/sk-live-123");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "from-a-file\r\n\n").unwrap();
        let c = credential("x.com", "X-Key", &format!("{{file:{}}}", path.display()));
        assert_eq!(c.value.0, "from-a-file");
    }

    #[test]
    fn a_missing_secret_is_an_error_naming_it() {
        let e = error("api.example.com", "Authorization", "Bearer {env:NOPE}");
        assert!(
            e.contains("NOPE") && e.contains("api.example.com:443"),
            "{e}"
        );
        assert!(e.contains("`Authorization`"), "{e}");
        assert!(error("x.com", "A", "{env:EMPTY}").contains("empty"));
        let e = error("x.com", "A", "{file:/nonexistent/agent-host-key}");
        assert!(e.contains("/nonexistent/agent-host-key"), "{e}");
    }

    #[test]
    fn bad_credentials_are_refused_without_their_value() {
        // No secret read: a literal value is refused.
        let e = error("x.com", "A", "Bearer sk-pasted");
        assert!(
            e.contains("reads no secret") && !e.contains("sk-pasted"),
            "{e}"
        );
        for template in ["{env:KEY", "{oops}", "{env:}", "x}y"] {
            assert!(
                Credential::with_env("x.com", "A", template, env).is_err(),
                "{template}"
            );
        }
        assert!(error("x.com", "bad header", "{env:KEY}").contains("header name"));
        assert!(error("x.com", "Host", "{env:KEY}").contains("set by the host"));
        assert!(error("http://x.com", "A", "{env:KEY}").contains("destination"));
        // A value with a newline is not a header value; the error shows
        // the template, not what the variable held.
        let newline = |_: &str| Some(OsString::from("sk-secret\r\nX-Evil: 1"));
        let e = Credential::with_env("x.com", "A", "{env:KEY}", newline)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a valid header value") && !e.contains("sk-secret"),
            "{e}"
        );
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let c = credential("api.example.com", "Authorization", "Bearer {env:KEY}");
        let credentials = Credentials::new([c.clone()]).unwrap();
        for shown in [
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{credentials:?}"),
            format!("{}", c.value),
        ] {
            assert!(!shown.contains("sk-live"), "{shown}");
        }
        assert!(format!("{c:?}").contains("[redacted]"));
    }

    #[test]
    fn the_flag_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "k-1\n").unwrap();
        let flag = format!(
            "api.example.com=Authorization: Bearer {{file:{}}}",
            path.display()
        );
        let c: Credential = flag.parse().unwrap();
        assert_eq!(c.destination().to_string(), "api.example.com:443");
        assert_eq!(c.header(), "authorization");
        assert_eq!(c.value.0, "Bearer k-1");
        let c: Credential = format!("[::1]:8080=X-Key:{{file:{}}}", path.display())
            .parse()
            .unwrap();
        assert_eq!(c.destination().to_string(), "[::1]:8080");
        assert!(
            "api.example.com Authorization"
                .parse::<Credential>()
                .is_err()
        );
        assert!(
            "api.example.com=Authorization"
                .parse::<Credential>()
                .is_err()
        );
    }

    #[test]
    fn matching_follows_the_allow_list_grammar_with_443_by_default() {
        let credentials = Credentials::new([
            credential("api.example.com", "Authorization", "Bearer {env:KEY}"),
            credential("api.example.com", "OpenAI-Organization", "{env:ORG}"),
            credential("*.speech.example.net", "Token", "{env:KEY}"),
            credential("127.0.0.1:8080", "X-Local", "{env:ORG}"),
        ])
        .unwrap();
        let apply = |host: &str, port: u16| {
            let mut headers = HeaderMap::new();
            credentials.apply(true, host, port, &mut headers);
            let mut names: Vec<String> = headers.keys().map(|k| k.to_string()).collect();
            names.sort();
            names
        };
        assert_eq!(
            apply("api.example.com", 443),
            ["authorization", "openai-organization"]
        );
        assert_eq!(apply("API.Example.com.", 443).len(), 2);
        assert!(
            apply("api.example.com", 80).is_empty(),
            "no port = 443 only"
        );
        assert!(apply("example.com", 443).is_empty());
        assert!(apply("evilapi.example.com", 443).is_empty());
        assert_eq!(apply("eu.speech.example.net", 443), ["token"]);
        assert!(apply("speech.example.net", 443).is_empty());
        assert_eq!(apply("127.0.0.1", 8080), ["x-local"]);
        assert!(apply("127.0.0.1", 8081).is_empty());
        assert!(apply("localhost", 8080).is_empty());
    }

    #[test]
    fn a_plain_request_to_the_https_port_carries_none() {
        assert!(may_carry(true, 443));
        assert!(may_carry(true, 8443));
        assert!(may_carry(false, 8080));
        assert!(!may_carry(false, 443));
        let credentials = bearer_for_api();
        let mut headers = HeaderMap::new();
        credentials.apply(false, "api.example.com", 443, &mut headers);
        assert!(headers.is_empty(), "apply asks may_carry itself");
        credentials.apply(true, "api.example.com", 443, &mut headers);
        assert_eq!(headers["authorization"], "Bearer sk-live-123");
    }

    #[test]
    fn the_operators_value_replaces_the_guests() {
        let credentials = bearer_for_api();
        let mut headers = HeaderMap::new();
        headers.append("authorization", HeaderValue::from_static("Bearer guest"));
        headers.append("Authorization", HeaderValue::from_static("Bearer again"));
        headers.insert("x-other", HeaderValue::from_static("kept"));
        credentials.apply(true, "api.example.com", 443, &mut headers);
        let all: Vec<_> = headers.get_all("authorization").iter().collect();
        assert_eq!(all, ["Bearer sk-live-123"]);
        assert_eq!(headers["x-other"], "kept");
    }

    #[test]
    fn one_header_twice_for_overlapping_destinations_is_refused() {
        let a = || credential("api.example.com", "Authorization", "{env:KEY}");
        for other in [
            "API.example.com.:443",
            "*.example.com",
            "*",
            "api.example.com:443",
        ] {
            let b = credential(other, "authorization", "{env:ORG}");
            assert!(Credentials::new([a(), b]).is_err(), "{other}");
        }
        // Other port, other name, other header: fine.
        for (other, header) in [
            ("api.example.com:8443", "Authorization"),
            ("other.example.com", "Authorization"),
            ("api.example.com", "X-Key"),
        ] {
            let b = credential(other, header, "{env:ORG}");
            assert!(Credentials::new([a(), b]).is_ok(), "{other} {header}");
        }
        let net = |d: &str| credential(d, "A", "{env:KEY}");
        assert!(Credentials::new([net("10.0.0.0/8:1"), net("10.1.2.3:1")]).is_err());
        assert!(Credentials::new([net("10.0.0.0/16:1"), net("10.1.0.0/16:1")]).is_ok());
    }

    proptest::proptest! {
        /// Any flag text, and any template, is a credential or an error,
        /// never a panic.
        #[test]
        fn parsing_never_panics(flag in "\\PC{0,60}", template in "[{}a-z: ]{0,30}") {
            let _ = flag.parse::<Credential>();
            let _ = Credential::with_env("x.com", "A", &template, env);
        }
    }

    #[test]
    fn credentials_no_rule_reaches_are_found() {
        let credentials = Credentials::new([
            credential("api.example.com", "A", "{env:KEY}"),
            credential("*.example.org", "A", "{env:KEY}"),
            credential("127.0.0.1:9", "A", "{env:KEY}"),
        ])
        .unwrap();
        let unreachable = |rules: &[&str]| {
            let allow = HttpAllowList::parse(rules, false).unwrap();
            credentials
                .unreachable(&allow)
                .map(|c| c.destination().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            unreachable(&["api.example.com", "eu.example.org:443", "127.0.0.0/8"]),
            Vec::<String>::new()
        );
        assert_eq!(
            unreachable(&["api.example.com:80", "example.org", "127.0.0.1:10"]),
            ["api.example.com:443", "*.example.org:443", "127.0.0.1:9"]
        );
        assert_eq!(unreachable(&["*"]), Vec::<String>::new());
    }
}
