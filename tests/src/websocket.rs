//! WebSocket servers on loopback, for the `websocket` import's tests and
//! benchmark: an echo server and a flood, and the accept loop the speech
//! fakes ([`crate::fake_speech`]) share. Each serves every connection it
//! accepts and counts what happened; dropping it stops it and every
//! connection it holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// What a server saw, across its connections.
#[derive(Debug, Default)]
pub struct Seen {
    /// Connections upgraded.
    pub accepted: AtomicU64,
    /// Connections that ended (closed or dropped by the client).
    pub ended: AtomicU64,
    /// Messages the server sent.
    pub sent: AtomicU64,
    /// The close codes clients sent, in order.
    pub close_codes: Mutex<Vec<u16>>,
    /// The `authorization` header of each upgrade request, in order.
    pub authorizations: Mutex<Vec<Option<String>>>,
}

/// A running server.
pub struct Server {
    /// The port it listens on.
    pub port: u16,
    /// The address it listens on (`127.0.0.1` unless bound elsewhere).
    ip: std::net::IpAddr,
    /// What it saw so far.
    pub seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Server {
    /// `ws://<ip>:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "ws://{}{path}",
            std::net::SocketAddr::new(self.ip, self.port)
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One accepted connection.
pub(crate) type Peer = WebSocketStream<tokio::net::TcpStream>;

/// What a client's upgrade request asked for.
#[derive(Debug, Clone)]
pub(crate) struct Upgrade {
    /// The request's path and query.
    pub path: String,
    /// Its `authorization` header.
    pub authorization: Option<String>,
}

/// Serves every connection on `127.0.0.1` with `serve`.
async fn listen<F, Fut>(serve: F) -> Server
where
    F: Fn(Peer, Arc<Seen>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let loopback = "127.0.0.1:0".parse().expect("a loopback address");
    listen_on(loopback, move |peer, seen, _| serve(peer, seen)).await
}

/// Serves every connection on `addr` with `serve`, told what it asked for.
pub(crate) async fn listen_on<F, Fut>(addr: std::net::SocketAddr, serve: F) -> Server
where
    F: Fn(Peer, Arc<Seen>, Upgrade) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(addr)
        .await
        .expect("binding the server's port");
    let bound = listener.local_addr().expect("a bound address");
    let (ip, port) = (bound.ip(), bound.port());
    let seen = Arc::new(Seen::default());
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            // Dropped with the accept loop: aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let mut upgrade = None;
                // tungstenite's upgrade callback returns its `ErrorResponse` by value.
                #[allow(clippy::result_large_err)]
                let record = |request: &Request, response: Response| {
                    let authorization = request
                        .headers()
                        .get("authorization")
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                    seen.authorizations
                        .lock()
                        .expect("not poisoned")
                        .push(authorization.clone());
                    let path = request.uri().path_and_query().map(|p| p.to_string());
                    upgrade = Some(Upgrade {
                        path: path.unwrap_or_else(|| "/".to_owned()),
                        authorization,
                    });
                    Ok(response)
                };
                let Ok(peer) = tokio_tungstenite::accept_hdr_async(tcp, record).await else {
                    continue;
                };
                let upgrade = upgrade.expect("the callback ran for an accepted upgrade");
                seen.accepted.fetch_add(1, Ordering::Relaxed);
                let seen = seen.clone();
                let served = serve(peer, seen.clone(), upgrade);
                connections.spawn(async move {
                    served.await;
                    seen.ended.fetch_add(1, Ordering::Relaxed);
                });
            }
        }
    });
    Server {
        port,
        ip,
        seen,
        task,
    }
}

/// Records a client's close frame.
pub(crate) fn closed(seen: &Seen, message: &Message) {
    if let Message::Close(frame) = message {
        let code = frame.as_ref().map_or(1005, |f| f.code.into());
        seen.close_codes.lock().expect("not poisoned").push(code);
    }
}

/// Echoes every text and binary message until the client closes.
pub async fn echo() -> Server {
    listen(|mut peer, seen| async move {
        while let Some(Ok(message)) = peer.next().await {
            closed(&seen, &message);
            if (message.is_text() || message.is_binary()) && peer.send(message).await.is_ok() {
                seen.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
    .await
}

/// Sends each client `count` binary messages of `size` bytes as fast as it
/// reads them (a client that does not read holds the server back), then
/// waits for the client to close.
pub async fn flood(count: u64, size: usize) -> Server {
    listen(move |mut peer, seen| async move {
        let payload = tokio_tungstenite::tungstenite::Bytes::from(vec![b'f'; size]);
        for _ in 0..count {
            if peer.send(Message::Binary(payload.clone())).await.is_err() {
                return;
            }
            seen.sent.fetch_add(1, Ordering::Relaxed);
        }
        while let Some(Ok(message)) = peer.next().await {
            closed(&seen, &message);
        }
    })
    .await
}

/// Sends each client the text `messages`, in order, as soon as it connects
/// (a speech provider's transcripts), then waits for the client to close.
pub async fn talker(messages: &[&str]) -> Server {
    let messages: Vec<String> = messages.iter().map(|m| m.to_string()).collect();
    listen(move |mut peer, seen| {
        let messages = messages.clone();
        async move {
            for text in messages {
                if peer.send(Message::text(text)).await.is_err() {
                    return;
                }
                seen.sent.fetch_add(1, Ordering::Relaxed);
            }
            while let Some(Ok(message)) = peer.next().await {
                closed(&seen, &message);
            }
        }
    })
    .await
}
