//! The one way out: resolve → check → connect → TLS, within one deadline.
//! Guest HTTP and the server API (and the WebSocket import to come) open
//! their connections here.
//!
//! Policy:
//! - [`Network::route`] resolves a destination once and checks **every**
//!   address it resolves to against the caller's [`Egress`] rule; one
//!   denied address denies the destination. An address destination is not
//!   resolved.
//! - Through a proxy the proxy resolves names, so the host cannot pin
//!   addresses: a destination written as an address is still checked, a
//!   name is left to the proxy.
//! - [`Network::connect`] connects only to the route's checked addresses,
//!   in order, keeping the first that answers: the name is never resolved
//!   a second time, so DNS cannot swap in another address after the
//!   check. Then TLS, when the destination asks for it.
//! - One [`Deadline`] covers every step: what resolving took is not given
//!   again to connecting, and what the caller does next on the connection
//!   (an HTTP handshake) takes the same deadline. A deadline that has
//!   passed starts no step.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use super::policy::Egress;
use super::proxy::{self, ProxyUrl};
use super::tcp::{connect_addrs, resolve};
use super::{Connection, NetError, Network};

/// Where a connection goes: a host (a name, an IPv4 address, or an IPv6
/// address with or without brackets), a port, and whether it speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    /// TLS (`https`, `wss`) or plain (`http`, `ws`); also picks the proxy.
    pub tls: bool,
    /// The host, as the URL gives it.
    pub host: &'a str,
    /// The port.
    pub port: u16,
}

impl Destination<'_> {
    /// The host without the brackets of an IPv6 address.
    fn bare(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// When a connection must be open: one budget for every step of opening
/// it, started when the deadline is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// The instant it passes (for `tokio::time::timeout_at`).
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Runs `step` until the deadline: [`NetError::Timeout`] when it has
    /// passed, before or during the step.
    async fn bound<T>(
        &self,
        step: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, NetError> {
        if Instant::now() >= self.at {
            return Err(NetError::Timeout(self.budget));
        }
        tokio::time::timeout_at(self.at, step)
            .await
            .unwrap_or(Err(NetError::Timeout(self.budget)))
    }
}

/// A destination resolved and checked by [`Network::route`]: how
/// [`Network::connect`] will reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    tls: bool,
    /// The host without brackets: the TLS server name and the proxy's
    /// `CONNECT` target.
    host: String,
    port: u16,
    via: Via,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Via {
    /// Through this proxy, which resolves the name.
    Proxy(ProxyUrl),
    /// Straight to the first of these checked addresses that answers.
    Direct(Vec<SocketAddr>),
}

impl Network {
    /// Resolves `dest` (unless it goes through a proxy or is an address)
    /// and checks every address against `egress`, within `deadline`:
    /// [`NetError::Denied`] for the first address `egress` refuses.
    pub async fn route(
        &self,
        dest: Destination<'_>,
        egress: &dyn Egress,
        deadline: Deadline,
    ) -> Result<Route, NetError> {
        let host = dest.bare();
        let literal = host.parse::<IpAddr>().ok();
        let proxy = self.proxy_for(dest.tls, host).cloned();
        let addrs = match (literal, &proxy) {
            (Some(ip), _) => vec![SocketAddr::new(ip, dest.port)],
            (None, Some(_)) => Vec::new(),
            (None, None) => deadline.bound(resolve(host, dest.port)).await?,
        };
        for addr in &addrs {
            egress
                .check(*addr)
                .map_err(|why| NetError::Denied { addr: *addr, why })?;
        }
        Ok(Route {
            tls: dest.tls,
            host: host.to_owned(),
            port: dest.port,
            via: match proxy {
                Some(proxy) => Via::Proxy(proxy),
                None => Via::Direct(addrs),
            },
        })
    }

    /// Opens `route`: a TCP connection to one of its addresses or a tunnel
    /// through its proxy, then TLS if the destination speaks it, within
    /// `deadline`.
    pub async fn connect(
        &self,
        route: &Route,
        deadline: Deadline,
    ) -> Result<Box<dyn Connection>, NetError> {
        deadline
            .bound(async {
                let tcp = match &route.via {
                    Via::Proxy(proxy) => proxy::tunnel(proxy, &route.host, route.port).await?,
                    Via::Direct(addrs) => connect_addrs(addrs, &route.host).await?,
                };
                let _ = tcp.set_nodelay(true);
                Ok(if route.tls {
                    Box::new(self.tls(tcp, &route.host).await?) as Box<dyn Connection>
                } else {
                    Box::new(tcp) as Box<dyn Connection>
                })
            })
            .await
    }

    /// [`Self::route`], then [`Self::connect`], within one `deadline`.
    pub async fn dial(
        &self,
        dest: Destination<'_>,
        egress: &dyn Egress,
        deadline: Deadline,
    ) -> Result<Box<dyn Connection>, NetError> {
        let route = self.route(dest, egress, deadline).await?;
        self.connect(&route, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::net::policy::{HttpAllowList, Unrestricted};

    fn loopback(tls: bool, port: u16) -> Destination<'static> {
        Destination {
            tls,
            host: "127.0.0.1",
            port,
        }
    }

    /// What one step took is gone for the next: once the deadline has
    /// passed (here during a sleep that stands for a slow resolver),
    /// connecting to a server that would answer at once is a timeout, not
    /// a fresh budget.
    #[tokio::test]
    async fn a_spent_deadline_leaves_nothing_for_the_next_step() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let network = Network::default();
        let budget = Duration::from_millis(100);
        let deadline = Deadline::after(budget);
        let route = network
            .route(loopback(false, port), &Unrestricted, deadline)
            .await
            .unwrap();
        tokio::time::sleep(budget * 2).await;
        let err = network.connect(&route, deadline).await.err().unwrap();
        assert!(matches!(err, NetError::Timeout(b) if b == budget), "{err}");
        // The server was there: a deadline with time left connects.
        let fresh = Deadline::after(Duration::from_secs(10));
        network.connect(&route, fresh).await.unwrap();
    }

    /// A server that accepts but never answers the TLS handshake holds the
    /// connection until the deadline, not longer.
    #[tokio::test]
    async fn a_server_silent_on_tls_times_out_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            // Holds the socket open and says nothing.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(socket);
        });
        let budget = Duration::from_millis(300);
        let network = Network::default();
        let dial = network.dial(loopback(true, port), &Unrestricted, Deadline::after(budget));
        let result = tokio::time::timeout(Duration::from_secs(30), dial)
            .await
            .expect("the deadline ends the dial");
        assert!(
            matches!(result, Err(NetError::Timeout(b)) if b == budget),
            "{:?}",
            result.err()
        );
        server.abort();
    }

    /// The egress rule sees every address before any connection: a
    /// loopback address behind a `*` rule is denied, one named by an
    /// address rule is reached.
    #[tokio::test]
    async fn every_address_is_checked_before_connecting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let network = Network::default();
        let deadline = Deadline::after(Duration::from_secs(10));
        let any_name = HttpAllowList::parse(["*"], false).unwrap();
        let err = network
            .dial(loopback(false, port), &any_name, deadline)
            .await
            .err()
            .unwrap();
        match err {
            NetError::Denied { addr, why } => {
                assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], port)));
                assert!(why.contains("loopback"), "{why}");
            }
            other => panic!("not denied: {other}"),
        }
        let named = HttpAllowList::parse([format!("127.0.0.1:{port}")], false).unwrap();
        network
            .dial(loopback(false, port), &named, deadline)
            .await
            .unwrap();
        let (_, from) = listener.accept().await.unwrap();
        assert!(from.ip().is_loopback());
    }
}
