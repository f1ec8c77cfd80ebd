//! A TCP proxy on loopback that can cut, stall (black-hole) and delay the
//! connections it carries, to put network faults between agent-host and
//! the fake LiveKit server.
//!
//! Faults apply to the connections open when they are set; a connection
//! made later passes cleanly, as it would after a network path heals.

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
