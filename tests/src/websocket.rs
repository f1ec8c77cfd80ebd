//! WebSocket servers on loopback, for the `websocket` import's tests and
//! benchmark: an echo server and a flood. Each serves every connection it
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
    /// Where it listens (`127.0.0.1:<port>`).
    pub port: u16,
    /// What it saw so far.
    pub seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl Server {
    /// `ws://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Peer = WebSocketStream<tokio::net::TcpStream>;

/// Serves every connection with `serve`.
async fn listen<F, Fut>(serve: F) -> Server
where
    F: Fn(Peer, Arc<Seen>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let port = listener.local_addr().expect("a bound address").port();
    let seen = Arc::new(Seen::default());
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            // Dropped with the accept loop: aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let heard = seen.clone();
                // tungstenite's upgrade callback returns its `ErrorResponse` by value.
                #[allow(clippy::result_large_err)]
                let record = move |request: &Request, response: Response| {
                    let authorization = request
                        .headers()
                        .get("authorization")
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                    heard
                        .authorizations
                        .lock()
                        .expect("not poisoned")
                        .push(authorization);
                    Ok(response)
                };
                let Ok(peer) = tokio_tungstenite::accept_hdr_async(tcp, record).await else {
                    continue;
                };
                seen.accepted.fetch_add(1, Ordering::Relaxed);
                let seen = seen.clone();
                let served = serve(peer, seen.clone());
                connections.spawn(async move {
                    served.await;
                    seen.ended.fetch_add(1, Ordering::Relaxed);
                });
            }
        }
    });
    Server { port, seen, task }
}

/// Records a client's close frame.
fn closed(seen: &Seen, message: &Message) {
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
