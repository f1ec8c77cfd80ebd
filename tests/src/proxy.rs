//! Proxies on loopback:
//! - [`FaultProxy`], a TCP proxy that can cut, stall (black-hole) and delay
//!   the connections it carries, to put network faults between agent-host
//!   and the fake LiveKit server. Faults apply to the connections open when
//!   they are set; a connection made later passes cleanly, as it would
//!   after a network path heals.
//! - [`ConnectProxy`], an HTTP `CONNECT` proxy like a company's egress
//!   proxy, that records every tunnel it was asked for and opens tunnels
//!   to loopback only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What happens to a connection's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Bytes are read and thrown away, in both directions; nothing is closed.
    Stall,
    /// Each chunk waits this long before it is passed on.
    Delay(Duration),
    Cut,
}

/// The proxy; dropping it closes everything.
pub struct FaultProxy {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<watch::Sender<Mode>>>>,
    _tasks: JoinSet<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 that forwards to `target`.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<watch::Sender<Mode>>>> = Arc::default();
        let mut tasks = JoinSet::new();
        let registry = conns.clone();
        tasks.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (mode, _) = watch::channel(Mode::Pass);
                let (c_read, c_write) = client.into_split();
                let (s_read, s_write) = server.into_split();
                tokio::spawn(pump(c_read, s_write, mode.subscribe()));
                tokio::spawn(pump(s_read, c_write, mode.subscribe()));
                registry.lock().unwrap().push(mode);
            }
        });
        FaultProxy {
            addr,
            conns,
            _tasks: tasks,
        }
    }

    /// `ws://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    fn set(&self, mode: Mode) {
        let mut conns = self.conns.lock().unwrap();
        for conn in conns.iter() {
            conn.send_replace(mode);
        }
        if mode == Mode::Cut {
            conns.clear();
        }
    }

    /// Closes every open connection at once.
    pub fn cut(&self) {
        self.set(Mode::Cut);
    }

    /// Open connections become black holes: nothing arrives, nothing closes.
    pub fn stall(&self) {
        self.set(Mode::Stall);
    }

    /// Open connections pass each chunk only after `delay`.
    pub fn delay(&self, delay: Duration) {
        self.set(Mode::Delay(delay));
    }
}

/// Copies one direction, honouring the connection's mode.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Cut {
                    return;
                }
                continue;
            }
        };
        let current = *mode.borrow();
        match current {
            Mode::Pass => {}
            Mode::Stall => continue,
            Mode::Delay(delay) => tokio::time::sleep(delay).await,
            Mode::Cut => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// An HTTP `CONNECT` proxy; dropping it stops accepting.
pub struct ConnectProxy {
    addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
    _tasks: JoinSet<()>,
}

/// Longest request head the proxy reads.
const MAX_HEAD: usize = 8 << 10;

impl ConnectProxy {
    /// Starts a proxy on 127.0.0.1.
    pub async fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the CONNECT proxy");
        let addr = listener.local_addr().unwrap();
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = targets.clone();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(tunnel(client, seen.clone()));
            }
        });
        ConnectProxy {
            addr,
            targets,
            _tasks: tasks,
        }
    }

    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY`/`HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every `CONNECT` target asked for (`host:port`), in order.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// Serves one client: `CONNECT host:port`, then bytes both ways.
async fn tunnel(mut client: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read_head = async {
        while !head.ends_with(b"\r\n\r\n") && head.len() < MAX_HEAD {
            match client.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return false,
            }
        }
        true
    };
    if !tokio::time::timeout(Duration::from_secs(10), read_head)
        .await
        .unwrap_or(false)
    {
        return;
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    seen.lock().unwrap().push(target.to_string());
    // Tests reach loopback only, whatever a client asks for.
    let loopback: Vec<SocketAddr> = tokio::net::lookup_host(target)
        .await
        .map(|addrs| addrs.filter(|a| a.ip().is_loopback()).collect())
        .unwrap_or_default();
    let mut server = None;
    for addr in loopback {
        if let Ok(stream) = TcpStream::connect(addr).await {
            server = Some(stream);
            break;
        }
    }
    let Some(mut server) = server else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}
