//! Name resolution and TCP connects, the first steps of every outbound
//! connection.
//!
//! Policy: a name is resolved once, to every address it has; connecting
//! tries the given addresses in order and keeps the first that answers,
//! never resolving again. Nothing here waits on its own: callers bound the
//! time (a [`Deadline`](super::Deadline), the worker's connect timeout).

use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::NetError;

/// Every address of the name `host` (no brackets), resolved once.
pub(super) async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, NetError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| NetError::Resolve {
            name: host.to_owned(),
            why: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(NetError::NoAddress(host.to_owned()));
    }
    Ok(addrs)
}

/// Resolves `host` and connects to the first address that answers; the
/// caller bounds the time.
pub(super) async fn connect_name(host: &str, port: u16) -> Result<TcpStream, NetError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = resolve(bare, port).await?;
    connect_addrs(&addrs, bare).await
}

/// Connects to the first of `addrs` that answers, in order; never resolves.
pub(super) async fn connect_addrs(addrs: &[SocketAddr], host: &str) -> Result<TcpStream, NetError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    Err(match last {
        Some(err) => NetError::Connect {
            host: host.to_owned(),
            err,
        },
        None => NetError::NoAddress(host.to_owned()),
    })
}
