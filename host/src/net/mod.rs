//! How the host opens outbound connections: TCP, an HTTP `CONNECT` proxy
//! when one applies, and TLS with the built-in roots plus private CAs. One
//! piece of code for the worker connection, the server API and guest HTTP.
//!
//! Policy:
//! - [`Network::default`] connects directly and trusts the built-in roots
//!   only; [`Network::from_env`] (what `agent-host run` uses) adds the proxy
//!   variables ([`proxy`]) and `SSL_CERT_FILE`/`SSL_CERT_DIR` plus any
//!   `--ca-file` ([`tls`]). Bad settings are errors when the `Network` is
//!   built, never later.
//! - Guest HTTP and the server API open connections one way
//!   ([`Network::route`] then [`Network::connect`], or [`Network::dial`]):
//!   resolve once, check every address against an [`Egress`] rule
//!   ([`policy`]: the guest's allow-list, or [`Unrestricted`] for the
//!   server the operator configured), connect only to checked addresses,
//!   then TLS, all within one [`Deadline`].
//! - Direct connections try the resolved addresses in order and keep the
//!   first that answers; a proxied one leaves name resolution to the
//!   proxy.
//! - Errors name the destination or the proxy, and never a credential.
//!
//! Layout: [`policy`] decides where a connection may go and does no I/O;
//! [`credential`] holds the headers the host adds for the operator;
//! `dial.rs` is the way out, over `tcp.rs` (resolving and connecting);
//! [`proxy`] and [`tls`] are its proxy and TLS roots; `body.rs` caps the
//! bodies of the HTTP exchanges made for guests.
//! Nothing here knows the runtime or rooms.

mod body;
pub mod credential;
mod dial;
pub mod policy;
pub mod proxy;
mod tcp;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub(crate) use self::body::Capped;
pub use self::dial::{Deadline, Destination, Route};
pub use self::policy::{Egress, Unrestricted};
pub use self::proxy::{NoProxy, ProxyConfig, ProxyUrl};

/// What a [`Network`] is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    /// PEM files of CAs to trust beside the built-in roots.
    pub ca_files: Vec<PathBuf>,
    /// Directories whose PEM files hold CAs to trust.
    pub ca_dirs: Vec<PathBuf>,
    /// Which destinations go through which proxy.
    pub proxy: ProxyConfig,
}

impl NetworkConfig {
    /// `SSL_CERT_FILE`, `SSL_CERT_DIR` and the proxy variables of the
    /// environment, plus `ca_files` (`--ca-file`).
    pub fn from_env(ca_files: &[PathBuf]) -> Result<Self, NetError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let mut files = Vec::new();
        files.extend(var("SSL_CERT_FILE").map(PathBuf::from));
        files.extend(ca_files.iter().cloned());
        let dirs = var("SSL_CERT_DIR")
            .map(|dirs| std::env::split_paths(&dirs).collect())
            .unwrap_or_default();
        Ok(Self {
            ca_files: files,
            ca_dirs: dirs,
            proxy: ProxyConfig::from_env()?,
        })
    }
}

/// The host's way out: proxy choice and TLS roots. Cheap to clone; two are
/// equal when built from the same [`NetworkConfig`].
#[derive(Clone)]
pub struct Network {
    config: Arc<NetworkConfig>,
    tls: Arc<rustls::ClientConfig>,
}

impl Network {
    /// A network as `config` says; reads the CA files now.
    pub fn new(config: NetworkConfig) -> Result<Self, NetError> {
        let tls = tls::client_config(&config.ca_files, &config.ca_dirs)?;
        Ok(Self {
            config: Arc::new(config),
            tls,
        })
    }

    /// [`NetworkConfig::from_env`], built.
    pub fn from_env(ca_files: &[PathBuf]) -> Result<Self, NetError> {
        Self::new(NetworkConfig::from_env(ca_files)?)
    }

    /// What this network was built from.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The proxy for `host` reached over TLS (`https`/`wss`) or not.
    pub fn proxy_for(&self, tls: bool, host: &str) -> Option<&ProxyUrl> {
        self.config.proxy.for_destination(tls, host)
    }

    /// A TCP stream to `host:port`, for the worker connection: through the
    /// proxy when one applies, else to the first address of `host` that
    /// answers. Checks no address (the operator chose the server); `tls`
    /// only picks the proxy; the caller bounds the time.
    pub async fn tcp(&self, tls: bool, host: &str, port: u16) -> Result<TcpStream, NetError> {
        let tcp = match self.proxy_for(tls, host) {
            Some(proxy) => proxy::tunnel(proxy, host, port).await?,
            None => tcp::connect_name(host, port).await?,
        };
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// Speaks TLS for `name` (a host name or an IP address) over `tcp`,
    /// checked against this network's roots.
    pub async fn tls(&self, tcp: TcpStream, name: &str) -> Result<TlsStream<TcpStream>, NetError> {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        let server_name = match bare.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(bare.to_owned())
                .map_err(|_| NetError::BadName(bare.to_owned()))?,
        };
        tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|err| NetError::Tls {
                name: bare.to_owned(),
                hint: tls::hint(&err),
                err,
            })
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new(NetworkConfig::default())
            .unwrap_or_else(|_| unreachable!("the built-in roots need no files"))
    }
}

impl PartialEq for Network {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl Eq for Network {}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Network").field(&self.config).finish()
    }
}

/// `host:port`, with brackets around an IPv6 address (`host` without
/// them).
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An open connection to a server: a byte stream, plain or TLS, direct or
/// tunnelled through a proxy.
pub trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// Why a connection (or a network setting) failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The name resolved to no address.
    #[error("cannot resolve {name}: {why}")]
    Resolve {
        /// The name.
        name: String,
        /// What the resolver said.
        why: String,
    },
    /// The name resolved, to no address at all.
    #[error("cannot resolve {0}: no address")]
    NoAddress(String),
    /// The caller's [`Egress`] rule refused an address the destination
    /// resolved to.
    #[error("{addr} is not allowed: {why}")]
    Denied {
        /// The refused address.
        addr: SocketAddr,
        /// The rule's reason.
        why: String,
    },
    /// No address answered.
    #[error("cannot connect to {host}: {err}")]
    Connect {
        /// The destination.
        host: String,
        /// The last address's error.
        #[source]
        err: std::io::Error,
    },
    /// The proxy could not be reached or refused the tunnel.
    #[error("proxy {proxy}: {why}")]
    Proxy {
        /// The proxy, without credentials.
        proxy: String,
        /// What went wrong.
        why: String,
    },
    /// The TLS handshake failed.
    #[error("TLS with {name}: {err}{hint}")]
    Tls {
        /// The server name.
        name: String,
        /// rustls' error.
        #[source]
        err: std::io::Error,
        /// What to do about it, when known.
        hint: &'static str,
    },
    /// The connection was not open within the caller's time.
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    /// Not a name TLS can check a certificate against.
    #[error("`{0}` is not a valid TLS server name")]
    BadName(String),
    /// A CA file or directory cannot be used.
    #[error("CA certificates: {0}")]
    Ca(String),
    /// A proxy variable cannot be used.
    #[error("{var}: {why}")]
    Config {
        /// The variable.
        var: String,
        /// Why.
        why: String,
    },
}
