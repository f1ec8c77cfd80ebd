//! Why an HTTP request failed, in words a job can report.
//!
//! Every failure of [`crate::http`] is one [`Error`]; the `wasi:http`
//! error code the host answered with is kept where there is one, and its
//! name (`HttpRequestDenied`, `ConnectionReadTimeout`, ...) is part of the
//! message, so logs and reports can be matched on it.

use std::fmt;

pub use wasip2::http::types::ErrorCode;
use wasip2::http::types::HeaderError;

/// Why an HTTP request failed.
#[derive(Debug, Clone)]
pub enum Error {
    /// The request could not be made: a bad URL, header or body. Says which.
    Invalid(String),
    /// The host does not let the job reach the destination:
    /// `HttpRequestDenied` (no `--allow-http` rule names it) or
    /// `DestinationIpProhibited` (it resolves to a non-public address).
    Denied(ErrorCode),
    /// A wait ran out: one of the host's (`ConnectionTimeout`,
    /// `ConnectionReadTimeout`, `DnsTimeout`, ...), or with `None` the
    /// request's own deadline ([`RequestBuilder::timeout`](super::RequestBuilder::timeout)).
    Timeout(Option<ErrorCode>),
    /// Another `wasi:http` error: connecting, TLS, the protocol, a cap of
    /// the host (`HttpResponseBodySize`, ...).
    Transport(ErrorCode),
    /// Sending or reading a body failed; the host's explanation.
    Body(String),
    /// The body is longer than the response's
    /// [`max_body`](super::RequestBuilder::max_body); the limit in bytes.
    TooLarge(usize),
    /// A JSON body could not be written or read.
    Json(String),
    /// Anything else the client reported; its explanation.
    Other(String),
}

impl Error {
    /// The error for a `wasi:http` error code.
    pub(crate) fn from_code(code: ErrorCode) -> Self {
        match code {
            ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
                Error::Denied(code)
            }
            ErrorCode::DnsTimeout
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => Error::Timeout(Some(code)),
            code => Error::Transport(code),
        }
    }

    /// The error for what wstd's client returned: its `wasi:http` code when
    /// it carries one, [`Error::Invalid`] for a header the host refused,
    /// else `other` with the root cause's text.
    pub(crate) fn from_wstd(err: wstd::http::Error, other: fn(String) -> Error) -> Self {
        if let Some(code) = err.downcast_ref::<ErrorCode>() {
            return Error::from_code(code.clone());
        }
        if let Some(refused) = err.downcast_ref::<HeaderError>() {
            return Error::Invalid(format!("the host refused a header: {refused:?}"));
        }
        other(err.root_cause().to_string())
    }

    /// The `wasi:http` error code, when the host answered with one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Denied(code) | Error::Transport(code) | Error::Timeout(Some(code)) => Some(code),
            _ => None,
        }
    }
}

/// `ErrorCode::HttpRequestDenied` → `HttpRequestDenied`.
fn name(code: &ErrorCode) -> String {
    let debug = format!("{code:?}");
    debug
        .strip_prefix("ErrorCode::")
        .map_or_else(|| debug.clone(), str::to_owned)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(why) => write!(f, "invalid request: {why}"),
            Error::Denied(code @ ErrorCode::DestinationIpProhibited) => write!(
                f,
                "denied by the host: the destination's address is not public ({})",
                name(code)
            ),
            Error::Denied(code) => write!(
                f,
                "denied by the host: no allow-list rule names the destination ({})",
                name(code)
            ),
            Error::Timeout(Some(code)) => write!(f, "timed out ({})", name(code)),
            Error::Timeout(None) => f.write_str("timed out: the request's deadline passed"),
            Error::Transport(code) => write!(f, "request failed ({})", name(code)),
            Error::Body(why) => write!(f, "reading the body: {why}"),
            Error::TooLarge(limit) => write!(f, "the body is larger than {limit} bytes"),
            Error::Json(why) => write!(f, "JSON body: {why}"),
            Error::Other(why) => write!(f, "request failed: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Lets `?` turn an [`Error`] into the `Err(String)` of a job's `run`.
impl From<Error> for String {
    fn from(error: Error) -> Self {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_code() {
        let denied = Error::from_code(ErrorCode::HttpRequestDenied);
        assert!(matches!(denied, Error::Denied(_)));
        assert_eq!(
            denied.to_string(),
            "denied by the host: no allow-list rule names the destination (HttpRequestDenied)"
        );
        let slow = Error::from_code(ErrorCode::ConnectionReadTimeout);
        assert_eq!(slow.to_string(), "timed out (ConnectionReadTimeout)");
        let big = Error::from_code(ErrorCode::HttpResponseBodySize(Some(65536)));
        assert_eq!(
            big.to_string(),
            "request failed (HttpResponseBodySize(Some(65536)))"
        );
        assert!(matches!(
            big.code(),
            Some(ErrorCode::HttpResponseBodySize(_))
        ));
        assert!(Error::Timeout(None).code().is_none());
    }
}
