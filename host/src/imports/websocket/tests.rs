//! The `websocket` import at the view level (no `Store`, no guest) against
//! WebSocket servers on loopback.

// tungstenite's upgrade callback returns its `ErrorResponse` by value.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use super::*;
use crate::config::net::WEBSOCKET_CLOSE_WAIT;

/// Longest any step of a test may take: generous, never reached when the
/// import works.
const PATIENCE: Duration = Duration::from_secs(30);

/// One job's sockets, as its store holds them.
struct Job {
    table: ResourceTable,
    sockets: WebSockets,
    memory: HostMemory,
}

impl Job {
    /// A job allowed to reach `127.0.0.1:port`, with `limits` changed by
    /// `adjust`.
    fn new(port: u16, adjust: impl FnOnce(&mut JobLimits)) -> Self {
        let mut limits = JobLimits {
            http_allow: HttpAllowList::parse([format!("127.0.0.1:{port}")], false).unwrap(),
            ..JobLimits::default()
        };
        adjust(&mut limits);
        let memory = HostMemory::new(limits.host_memory_bytes);
        Self {
            table: ResourceTable::new(),
            sockets: WebSockets::new(&limits, memory.clone()),
            memory,
        }
    }

    fn view(&mut self) -> WebSocketView<'_> {
        WebSocketView {
            table: &mut self.table,
            sockets: &mut self.sockets,
        }
    }

    /// `connect`, then the handshake's outcome, waited for on its pollable.
    async fn open(
        &mut self,
        url: &str,
        options: ConnectOptions,
    ) -> Result<Resource<Connection>, WebsocketError> {
        let future = self.view().connect(url.into(), options).await.unwrap()?;
        let id = self.table.get(&future).unwrap().id;
        let state = self.sockets.state(id).unwrap().subscribe();
        wait(Ready::new(state, Wait::Handshake)).await;
        let got = self.view().get(borrow(&future)).await.unwrap();
        HostFutureConnection::drop(&mut self.view(), future)
            .await
            .unwrap();
        got.expect("ready means the result is there")
    }

    /// The next message, waited for on the socket's pollable.
    async fn next(&mut self, conn: &Resource<Connection>) -> Result<Message, WebsocketError> {
        loop {
            if let Some(message) = self.view().receive(borrow(conn)).await.unwrap()? {
                return Ok(message);
            }
            wait(self.ready(conn, Wait::Readable)).await;
        }
    }

    /// Sends `message`, waiting on `subscribe-send` while it would block.
    async fn send(&mut self, conn: &Resource<Connection>, message: Message) {
        loop {
            match self
                .view()
                .send(borrow(conn), message.clone())
                .await
                .unwrap()
            {
                Ok(()) => return,
                Err(WebsocketError::WouldBlock) => wait(self.ready(conn, Wait::Writable)).await,
                Err(err) => panic!("send failed: {err:?}"),
            }
        }
    }

    fn ready(&self, conn: &Resource<Connection>, wait: Wait) -> Ready {
        let id = self.table.get(conn).unwrap().id;
        Ready::new(self.sockets.state(id).unwrap().subscribe(), wait)
    }
}

/// A borrow of `resource`, as the guest passes one.
fn borrow<T: 'static>(resource: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(resource.rep())
}

/// Waits for `ready`, within [`PATIENCE`].
async fn wait(mut ready: Ready) {
    use wasmtime_wasi::p2::Pollable as _;
    timeout(PATIENCE, ready.ready())
        .await
        .expect("the pollable became ready");
}

/// Whether `ready` is ready within a moment.
async fn is_ready(mut ready: Ready) -> bool {
    use wasmtime_wasi::p2::Pollable as _;
    timeout(Duration::from_millis(100), ready.ready())
        .await
        .is_ok()
}

fn options() -> ConnectOptions {
    ConnectOptions {
        headers: Vec::new(),
        subprotocols: Vec::new(),
        timeout_ms: None,
    }
}

type Peer = WebSocketStream<TcpStream>;

/// A WebSocket server on loopback for one connection: `answer` answers
/// the upgrade, then `serve` has the socket. Its port and task.
async fn serve_with<A, F, Fut>(answer: A, serve: F) -> (u16, JoinHandle<()>)
where
    A: FnOnce(&Request, Response) -> Result<Response, ErrorResponse> + Send + Unpin + 'static,
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let peer = tokio_tungstenite::accept_hdr_async(tcp, answer)
            .await
            .unwrap();
        serve(peer).await;
    });
    (port, task)
}

/// [`serve_with`], choosing the subprotocol `chat` when it is offered.
async fn serve<F, Fut>(serve: F) -> (u16, JoinHandle<()>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    serve_with(choose_chat, serve).await
}

fn choose_chat(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if offered.split(", ").any(|p| p == "chat") {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", "chat".parse().unwrap());
    }
    Ok(response)
}

/// Echoes every message until the peer closes.
async fn echo(mut peer: Peer) {
    while let Some(Ok(message)) = peer.next().await {
        if message.is_text() || message.is_binary() {
            peer.send(message).await.unwrap();
        }
    }
}

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/stream?x=1")
}

#[tokio::test]
async fn many_messages_both_ways_in_order_then_a_clean_close() {
    let (port, server) = serve(echo).await;
    let mut job = Job::new(port, |_| {});
    let conn = job.open(&url(port), options()).await.unwrap();
    assert_eq!(job.view().protocol(borrow(&conn)).await.unwrap(), None);
    let count = 500;
    let message = |i: usize| {
        if i.is_multiple_of(2) {
            Message::Text(format!("text {i}"))
        } else {
            Message::Binary(i.to_be_bytes().repeat(i % 64))
        }
    };
    // Sends and reads interleaved, as an agent streaming audio does.
    let mut received = 0;
    for i in 0..count {
        job.send(&conn, message(i)).await;
        while let Some(echoed) = job.view().receive(borrow(&conn)).await.unwrap().unwrap() {
            assert_eq!(echoed, message(received), "message {received} in order");
            received += 1;
        }
    }
    while received < count {
        assert_eq!(job.next(&conn).await.unwrap(), message(received));
        received += 1;
    }
    job.view()
        .close(borrow(&conn), 1000, "done".into())
        .await
        .unwrap()
        .unwrap();
    let end = job.next(&conn).await.unwrap_err();
    assert_eq!(
        end,
        WebsocketError::Closed(Some(CloseFrame {
            code: 1000,
            reason: "done".into()
        })),
        "the peer's close frame (tungstenite echoes ours)"
    );
    assert_eq!(
        job.next(&conn).await.unwrap_err(),
        end,
        "every later call returns it again"
    );
    timeout(PATIENCE, server).await.unwrap().unwrap();
    HostConnection::drop(&mut job.view(), conn).await.unwrap();
    timeout(PATIENCE, async {
        while job.memory.used() > 0 || job.sockets.open() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the socket's memory and slot come back");
}

/// A server that sends far more than the inbox holds, to a guest that
/// reads late: the socket stops being read (the server's writes block),
/// the host holds no more than its cap plus one message, and every
/// message arrives, in order.
#[tokio::test]
async fn a_slow_reader_gets_everything_and_the_host_holds_its_cap() {
    // 32 MiB: several times what the kernel's socket buffers take.
    const COUNT: u32 = 8192;
    const SIZE: usize = 4096;
    let sent = Arc::new(AtomicU32::new(0));
    let counter = sent.clone();
    let (port, server) = serve(move |mut peer| async move {
        for i in 0..COUNT {
            let mut payload = vec![0u8; SIZE];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            peer.send(WsMessage::binary(payload)).await.unwrap();
            counter.fetch_add(1, Ordering::Relaxed);
        }
        peer.close(None).await.unwrap();
        while peer.next().await.is_some() {}
    })
    .await;
    let buffer = 64 << 10;
    let mut job = Job::new(port, |l| l.websocket_buffer_bytes = buffer);
    let conn = job.open(&url(port), options()).await.unwrap();
    // The guest reads nothing for a while: the server is pushed back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = sent.load(Ordering::Relaxed);
    assert!(
        before < COUNT,
        "the server sent all {COUNT} into an unread socket"
    );
    let cap = WEBSOCKET_OVERHEAD_BYTES + buffer + SIZE as u64;
    assert!(job.memory.used() <= cap, "{} > {cap}", job.memory.used());
    for i in 0..COUNT {
        match job.next(&conn).await.unwrap() {
            Message::Binary(payload) => {
                assert_eq!(payload.len(), SIZE);
                assert_eq!(payload[..4], i.to_be_bytes(), "message {i} in order");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        job.next(&conn).await,
        Err(WebsocketError::Closed(Some(CloseFrame { code: 1005, .. })))
    ));
    assert!(
        job.memory.peak() <= cap + 1024,
        "peak {} over {cap} (and the upgrade request)",
        job.memory.peak()
    );
    timeout(PATIENCE, server).await.unwrap().unwrap();
}

/// A message over the cap from the server ends that socket with
/// `too-large` and a close 1009 to the server, after the messages before.
#[tokio::test]
async fn an_oversize_message_is_too_large_and_closes_with_1009() {
    let (code_tx, code_rx) = tokio::sync::oneshot::channel();
    let (port, server) = serve(|mut peer| async move {
        peer.send(WsMessage::text("small")).await.unwrap();
        peer.send(WsMessage::binary(vec![7u8; 4096])).await.unwrap();
        while let Some(Ok(message)) = peer.next().await {
            if let WsMessage::Close(frame) = message {
                let _ = code_tx.send(frame.map(|f| u16::from(f.code)));
                break;
            }
        }
    })
    .await;
    let mut job = Job::new(port, |l| l.websocket_message_bytes = 1024);
    let conn = job.open(&url(port), options()).await.unwrap();
    assert_eq!(
        job.next(&conn).await.unwrap(),
        Message::Text("small".into())
    );
    assert_eq!(
        job.next(&conn).await.unwrap_err(),
        WebsocketError::TooLarge(1024)
    );
    let code = timeout(PATIENCE, code_rx).await.unwrap().unwrap();
    assert_eq!(code, Some(1009));
    assert_eq!(
        job.view()
            .send(borrow(&conn), Message::Binary(vec![0; 2048]))
            .await
            .unwrap(),
        Err(WebsocketError::TooLarge(1024)),
        "the socket is over: later calls say why"
    );
    timeout(PATIENCE, server).await.unwrap().unwrap();
    // The job goes on: a second socket to a fresh server works.
    let (port, _server) = serve(echo).await;
    let mut job = Job::new(port, |l| l.websocket_message_bytes = 1024);
    let conn = job.open(&url(port), options()).await.unwrap();
    let too_big = Message::Text("x".repeat(2048));
    assert_eq!(
        job.view().send(borrow(&conn), too_big).await.unwrap(),
        Err(WebsocketError::TooLarge(1024)),
        "nor may the guest send one"
    );
    job.send(&conn, Message::Text("fits".into())).await;
    assert_eq!(job.next(&conn).await.unwrap(), Message::Text("fits".into()));
}

/// A server that accepts TCP and never answers the upgrade: `timeout`
/// once the deadline (the host's cap or the guest's shorter wait) passes.
#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(listener.accept().await.unwrap());
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let mut job = Job::new(port, |l| l.http_timeout = Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    assert_eq!(
        job.open(&url(port), options()).await.unwrap_err(),
        WebsocketError::Timeout
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut job = Job::new(port, |_| {});
    let asked = ConnectOptions {
        timeout_ms: Some(200),
        ..options()
    };
    let started = tokio::time::Instant::now();
    assert_eq!(
        job.open(&url(port), asked).await.unwrap_err(),
        WebsocketError::Timeout,
        "the guest's shorter wait"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(job.sockets.open(), 0, "a failed handshake frees its slot");
    server.abort();
}

/// The server dies mid-message (a frame header and part of its payload,
/// then the TCP connection drops): `failed`, after the message before.
#[tokio::test]
async fn a_close_mid_message_fails_after_the_messages_before() {
    let (port, server) = serve(|mut peer| async move {
        peer.send(WsMessage::text("before")).await.unwrap();
        let mut tcp = peer.into_inner();
        // A final text frame of 100 bytes, unmasked, with 10 of them sent.
        tcp.write_all(&[0x81, 100]).await.unwrap();
        tcp.write_all(&[b'x'; 10]).await.unwrap();
        tcp.flush().await.unwrap();
        drop(tcp);
    })
    .await;
    let mut job = Job::new(port, |_| {});
    let conn = job.open(&url(port), options()).await.unwrap();
    assert_eq!(
        job.next(&conn).await.unwrap(),
        Message::Text("before".into())
    );
    let err = job.next(&conn).await.unwrap_err();
    assert!(
        matches!(&err, WebsocketError::Failed(why) if why.contains("without a close frame")),
        "{err:?}"
    );
    timeout(PATIENCE, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_destination_not_allowed_is_denied() {
    let (port, _server) = serve(echo).await;
    let mut nothing = Job::new(port, |l| l.http_allow = HttpAllowList::default());
    let err = nothing.open(&url(port), options()).await.unwrap_err();
    assert!(
        matches!(&err, WebsocketError::Denied(why) if why.contains("empty")),
        "{err:?}"
    );
    // A name on the list that resolves to a loopback address, without an
    // address rule: denied once resolved, naming the address.
    let mut by_name = Job::new(port, |l| {
        l.http_allow = HttpAllowList::parse([format!("localhost:{port}")], false).unwrap();
    });
    let err = by_name
        .open(&format!("ws://localhost:{port}/"), options())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, WebsocketError::Denied(why) if why.contains("localhost") && (why.contains("127.0.0.1") || why.contains("::1"))),
        "{err:?}"
    );
    let mut other_port = Job::new(port, |_| {});
    let err = other_port
        .open(&url(port.wrapping_add(1)), options())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, WebsocketError::Denied(why) if why.contains("no --allow-http rule")),
        "{err:?}"
    );
    for bad in ["http://127.0.0.1/", "ws://user:pw@127.0.0.1/", "not a url"] {
        assert!(
            matches!(
                other_port
                    .view()
                    .connect(bad.into(), options())
                    .await
                    .unwrap(),
                Err(WebsocketError::Invalid(_))
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_job_may_open_so_many_sockets() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                if let Ok(peer) = tokio_tungstenite::accept_async(tcp).await {
                    echo(peer).await;
                }
            });
        }
    });
    let mut job = Job::new(port, |l| l.max_websockets = 2);
    let a = job.open(&url(port), options()).await.unwrap();
    let _b = job.open(&url(port), options()).await.unwrap();
    assert_eq!(
        job.view()
            .connect(url(port), options())
            .await
            .unwrap()
            .err(),
        Some(WebsocketError::TooManySockets(2))
    );
    // Dropping one closes it; its slot comes back once it is closed.
    HostConnection::drop(&mut job.view(), a).await.unwrap();
    timeout(PATIENCE, async {
        while job.sockets.open() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the dropped socket closes");
    job.open(&url(port), options()).await.unwrap();
    server.abort();
}

/// A server that does not read: `send` queues up to the cap, then says
/// `would-block`; `subscribe-send` is ready once the server reads again.
#[tokio::test]
async fn send_would_block_until_the_server_reads() {
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (port, _server) = serve(|mut peer| async move {
        let _ = go_rx.await;
        while let Some(Ok(_)) = peer.next().await {}
    })
    .await;
    let mut job = Job::new(port, |l| l.websocket_buffer_bytes = 64 << 10);
    let conn = job.open(&url(port), options()).await.unwrap();
    let chunk = Message::Binary(vec![1; 64 << 10]);
    let mut blocked = false;
    // TCP buffers take a few MiB on loopback; 128 MiB is far beyond them.
    for _ in 0..2048 {
        match job.view().send(borrow(&conn), chunk.clone()).await.unwrap() {
            Ok(()) => {}
            // Full for now; full for good once the TCP buffers are, too.
            Err(WebsocketError::WouldBlock) => {
                if !is_ready(job.ready(&conn, Wait::Writable)).await {
                    blocked = true;
                    break;
                }
            }
            Err(err) => panic!("{err:?}"),
        }
    }
    assert!(blocked, "the send buffer filled");
    let held = job.memory.used();
    assert!(
        held <= WEBSOCKET_OVERHEAD_BYTES + 2 * (64 << 10),
        "{held} bytes held for a 64 KiB buffer"
    );
    assert_eq!(
        job.view().send(borrow(&conn), chunk.clone()).await.unwrap(),
        Err(WebsocketError::WouldBlock)
    );
    go_tx.send(()).unwrap();
    wait(job.ready(&conn, Wait::Writable)).await;
    job.view()
        .send(borrow(&conn), chunk)
        .await
        .unwrap()
        .expect("room again");
}

#[tokio::test]
async fn headers_go_to_the_server_and_the_hosts_own_are_refused() {
    let (heard_tx, heard_rx) = tokio::sync::oneshot::channel();
    let answer = move |request: &Request, response: Response| {
        let _ = heard_tx.send(request.headers().clone());
        Ok(response)
    };
    let (port, _server) = serve_with(answer, echo).await;
    let mut job = Job::new(port, |_| {});
    for (name, value) in [
        ("Host", "evil.example"),
        ("Sec-WebSocket-Key", "x"),
        ("sec-websocket-protocol", "chat"),
        ("Upgrade", "h2c"),
        ("connection", "close"),
        ("content-length", "5"),
        ("bad name", "x"),
        ("x-ok", "line\nbreak"),
    ] {
        let asked = ConnectOptions {
            headers: vec![(name.into(), value.into())],
            ..options()
        };
        let refused = job.view().connect(url(port), asked).await.unwrap().err();
        assert!(
            matches!(&refused, Some(WebsocketError::Invalid(why)) if !why.contains(value)),
            "{name}: {refused:?} (and no header value in the error)"
        );
    }
    let asked = ConnectOptions {
        headers: vec![
            ("Authorization".into(), "Bearer token".into()),
            ("x-trace".into(), "1".into()),
            ("x-trace".into(), "2".into()),
        ],
        ..options()
    };
    job.open(&url(port), asked).await.unwrap();
    let heard = heard_rx.await.unwrap();
    assert_eq!(heard["authorization"], "Bearer token");
    let traces: Vec<_> = heard.get_all("x-trace").iter().collect();
    assert_eq!(traces, ["1", "2"]);
    assert_eq!(heard["host"], format!("127.0.0.1:{port}"));
}

#[tokio::test]
async fn subprotocols_are_offered_in_order_and_the_choice_is_read_back() {
    let (port, _server) = serve(echo).await;
    let mut job = Job::new(port, |_| {});
    let asked = ConnectOptions {
        subprotocols: vec!["v2.chat".into(), "chat".into()],
        ..options()
    };
    let conn = job.open(&url(port), asked).await.unwrap();
    assert_eq!(
        job.view().protocol(borrow(&conn)).await.unwrap(),
        Some("chat".into())
    );
    for bad in ["", "two words", "a,b"] {
        let asked = ConnectOptions {
            subprotocols: vec![bad.into()],
            ..options()
        };
        assert!(
            matches!(
                job.view().connect(url(port), asked).await.unwrap(),
                Err(WebsocketError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    // A server that answers with a subprotocol nobody offered is refused.
    let pushy = |_: &Request, mut response: Response| {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", "other".parse().unwrap());
        Ok(response)
    };
    let (port, _server) = serve_with(pushy, echo).await;
    let mut job = Job::new(port, |_| {});
    let asked = ConnectOptions {
        subprotocols: vec!["chat".into()],
        ..options()
    };
    assert!(matches!(
        job.open(&url(port), asked).await,
        Err(WebsocketError::Failed(_))
    ));
}

#[tokio::test]
async fn a_refused_upgrade_is_rejected_with_its_status() {
    let refuse = |_: &Request, _: Response| {
        let mut response = ErrorResponse::new(Some("no".into()));
        *response.status_mut() = http::StatusCode::FORBIDDEN;
        Err(response)
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = tokio_tungstenite::accept_hdr_async(tcp, refuse).await;
    });
    let mut job = Job::new(port, |_| {});
    assert_eq!(
        job.open(&url(port), options()).await.unwrap_err(),
        WebsocketError::Rejected(403)
    );
    server.await.unwrap();
}

#[tokio::test]
async fn close_codes_and_reasons_are_checked() {
    let (port, _server) = serve(echo).await;
    let mut job = Job::new(port, |_| {});
    let conn = job.open(&url(port), options()).await.unwrap();
    for (code, reason) in [
        (1001, String::new()),
        (1009, String::new()),
        (2999, String::new()),
        (5000, String::new()),
        (1000, "x".repeat(124)),
    ] {
        assert!(
            matches!(
                job.view().close(borrow(&conn), code, reason).await.unwrap(),
                Err(WebsocketError::Invalid(_))
            ),
            "{code}"
        );
    }
    job.view()
        .close(borrow(&conn), 4000, "x".repeat(123))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        job.view()
            .close(borrow(&conn), 1000, String::new())
            .await
            .unwrap(),
        Err(WebsocketError::Closed(None)),
        "closing twice"
    );
    assert_eq!(
        job.view()
            .send(borrow(&conn), Message::Text("late".into()))
            .await
            .unwrap(),
        Err(WebsocketError::Closed(None)),
        "sending after the close"
    );
    assert!(matches!(
        job.next(&conn).await,
        Err(WebsocketError::Closed(Some(CloseFrame { code: 4000, .. })))
    ));
}

/// The job's end (its store, and with it the sockets, dropped) ends every
/// socket task at once: the server sees its connection go.
#[tokio::test]
async fn the_jobs_end_closes_its_sockets_and_ends_their_tasks() {
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel();
    let (port, _server) = serve(|mut peer| async move {
        let mut close = None;
        while let Some(Ok(message)) = peer.next().await {
            if let WsMessage::Close(frame) = message {
                close = frame.map(|f| u16::from(f.code));
            }
        }
        let _ = gone_tx.send(close);
    })
    .await;
    let mut job = Job::new(port, |_| {});
    let _conn = job.open(&url(port), options()).await.unwrap();
    assert!(job.memory.used() >= WEBSOCKET_OVERHEAD_BYTES);
    let memory = job.memory.clone();
    drop(job);
    let close = timeout(WEBSOCKET_CLOSE_WAIT / 2, gone_rx)
        .await
        .expect("the connection ends with the job, before any close wait")
        .unwrap();
    assert_eq!(close, Some(1000), "the peer got its close frame");
    timeout(PATIENCE, async {
        while memory.used() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the task ends and gives its memory back");
}

/// The operator's credential goes on the upgrade request to its
/// destination, replacing the guest's own header of that name; a socket to
/// another allowed destination gets none, and the guest's errors never
/// hold it.
#[tokio::test]
async fn the_operators_credential_reaches_its_destination_only() {
    const SECRET: &str = "sk-ws-operator-7c1d";
    let credential = |port: u16| {
        crate::net::credential::Credential::with_env(
            &format!("127.0.0.1:{port}"),
            "Authorization",
            "Bearer {env:KEY}",
            |_| Some(SECRET.into()),
        )
        .unwrap()
    };
    let heard = |tx: tokio::sync::oneshot::Sender<http::HeaderMap>| {
        move |request: &Request, response: Response| {
            let _ = tx.send(request.headers().clone());
            Ok(response)
        }
    };
    let (keyed_tx, keyed_rx) = tokio::sync::oneshot::channel();
    let (keyed, _a) = serve_with(heard(keyed_tx), echo).await;
    let (other_tx, other_rx) = tokio::sync::oneshot::channel();
    let (other, _b) = serve_with(heard(other_tx), echo).await;
    let mut job = Job::new(keyed, |limits| {
        limits.http_allow = HttpAllowList::parse(
            [format!("127.0.0.1:{keyed}"), format!("127.0.0.1:{other}")],
            false,
        )
        .unwrap();
        limits.credentials = Credentials::new([credential(keyed)]).unwrap();
    });
    let own = ConnectOptions {
        headers: vec![("Authorization".into(), "Bearer from-the-guest".into())],
        ..options()
    };
    job.open(&url(keyed), own.clone()).await.unwrap();
    let headers = keyed_rx.await.unwrap();
    let values: Vec<_> = headers.get_all("authorization").iter().collect();
    assert_eq!(
        values,
        [format!("Bearer {SECRET}").as_str()],
        "the operator's value wins"
    );
    job.open(&url(other), own).await.unwrap();
    let headers = other_rx.await.unwrap();
    assert_eq!(
        headers["authorization"], "Bearer from-the-guest",
        "no credential for another destination"
    );
    // A destination the allow-list refuses gets nothing and learns nothing.
    let refused = job
        .view()
        .connect("ws://127.0.0.2:9/".into(), options())
        .await
        .unwrap()
        .err();
    assert!(
        matches!(&refused, Some(WebsocketError::Denied(why)) if !why.contains(SECRET)),
        "{refused:?}"
    );
}
