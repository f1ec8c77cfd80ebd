//! Outbound HTTP is reachable only through the allow-list, and within its
//! caps; a guest cannot hoard host resources.
//!
//! Every test runs a real HTTP server on loopback and the `http-fetch`
//! guest (metadata = the URL) in a sim room; the guest reports the status
//! and body excerpt, or the error code, as chat text and as its outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agent_host::room::sim::SimRooms;
use agent_host::{HttpAllowList, JobLimits, Outcome};
use agent_host_tests::sim::run_to_end;
use agent_host_tests::{faulty_job, guests, load, run_job, runtime};
use faulty_mode::Mode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A loopback HTTP/1.1 server: `/hello` answers a short text, `/big/<n>`
/// `n` bytes with a `content-length`, `/stream/<n>` `n` bytes chunked,
/// `/stall` nothing for a minute.
/// Counts the requests it got.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    let size = |p: &str| p.parse::<usize>().unwrap_or(0);
                    let response: Vec<u8> = if path == "/hello" {
                        let body = "hello from loopback";
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_bytes()
                    } else if let Some(n) = path.strip_prefix("/big/") {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            size(n)
                        )
                        .into_bytes();
                        r.resize(r.len() + size(n), b'x');
                        r
                    } else if let Some(n) = path.strip_prefix("/stream/") {
                        let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
                        for _ in 0..size(n).div_ceil(4096) {
                            r.extend_from_slice(b"1000\r\n");
                            r.resize(r.len() + 4096, b'y');
                            r.extend_from_slice(b"\r\n");
                        }
                        r.extend_from_slice(b"0\r\n\r\n");
                        r
                    } else if path == "/stall" {
                        // Never answers (for as long as any test waits).
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    } else {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    };
                    // The client may stop reading (a cap was hit): ignore errors.
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Runs `http-fetch` on `url` under `limits`: the outcome and the texts the
/// guest sent.
async fn fetch(url: &str, limits: JobLimits) -> (Outcome, Vec<String>) {
    let id = format!("AJ_http_{}", url.len());
    run_to_end(guests::HTTP_FETCH, &id, url, limits).await
}

fn allow(rules: &[String], private: bool) -> JobLimits {
    JobLimits {
        http_allow: HttpAllowList::parse(rules, private).unwrap(),
        ..JobLimits::default()
    }
}

fn failed_with(outcome: &Outcome, code: &str) -> bool {
    matches!(outcome, Outcome::Failed(reason) if reason.contains(code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_destination_works_end_to_end() {
    let server = Server::start().await;
    let port = server.port;
    // Loopback allowed explicitly by address...
    let (outcome, texts) = fetch(
        &format!("http://127.0.0.1:{port}/hello"),
        allow(&[format!("127.0.0.1:{port}")], false),
    )
    .await;
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(texts, ["200 hello from loopback"]);
    // ... or by name, with the opt-in for non-public addresses.
    let (outcome, texts) = fetch(
        &format!("http://localhost:{port}/hello"),
        allow(&[format!("localhost:{port}")], true),
    )
    .await;
    assert_eq!(outcome, Outcome::Success, "{texts:?}");
    assert_eq!(texts, ["200 hello from loopback"]);
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_allow_list_denies_all() {
    let server = Server::start().await;
    let url = format!("http://127.0.0.1:{}/hello", server.port);
    let (outcome, texts) = fetch(&url, JobLimits::default()).await;
    assert!(failed_with(&outcome, "HttpRequestDenied"), "{outcome}");
    assert!(texts[0].starts_with("error:") && texts[0].contains("HttpRequestDenied"));
    assert_eq!(server.hits(), 0, "a denied request reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_not_on_the_list_is_denied() {
    let server = Server::start().await;
    let port = server.port;
    let other = port.wrapping_add(1).max(1);
    let rules = [
        format!("127.0.0.1:{other}"),
        "example.com".to_owned(),
        "*.localhost".to_owned(),
    ];
    for url in [
        format!("http://127.0.0.1:{port}/hello"),
        format!("http://localhost:{port}/hello"),
        format!("http://[::1]:{port}/hello"),
    ] {
        let (outcome, _) = fetch(&url, allow(&rules, true)).await;
        assert!(
            failed_with(&outcome, "HttpRequestDenied"),
            "{url}: {outcome}"
        );
    }
    assert_eq!(server.hits(), 0, "a denied request reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_address_behind_an_allowed_name_is_denied() {
    let server = Server::start().await;
    let port = server.port;
    let url = format!("http://localhost:{port}/hello");
    // The name is allowed (exactly, and by `*`), but it resolves to loopback.
    for rule in [format!("localhost:{port}"), "*".to_owned()] {
        let (outcome, _) = fetch(&url, allow(std::slice::from_ref(&rule), false)).await;
        assert!(
            failed_with(&outcome, "DestinationIpProhibited"),
            "{rule}: {outcome}"
        );
    }
    // An address rule for another block does not open loopback either.
    let (outcome, _) = fetch(&url, allow(&["*".into(), "10.0.0.0/8".into()], false)).await;
    assert!(
        failed_with(&outcome, "DestinationIpProhibited"),
        "{outcome}"
    );
    assert_eq!(server.hits(), 0, "a denied request reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_cap_fails_that_request_cleanly() {
    let server = Server::start().await;
    let port = server.port;
    let limits = JobLimits {
        http_response_bytes: 64 << 10,
        ..allow(&[format!("127.0.0.1:{port}")], false)
    };
    // Announced too large: refused before the body is read.
    let (outcome, _) = fetch(
        &format!("http://127.0.0.1:{port}/big/{}", 256 << 10),
        limits.clone(),
    )
    .await;
    assert!(failed_with(&outcome, "HttpResponseBodySize"), "{outcome}");
    // Streamed without a length: cut when the cap is passed; the guest
    // reads an error from the body stream.
    let (outcome, _) = fetch(
        &format!("http://127.0.0.1:{port}/stream/{}", 256 << 10),
        limits.clone(),
    )
    .await;
    assert!(
        failed_with(
            &outcome,
            "reading the body: HTTP response body size exceeds limit: 65536 bytes"
        ),
        "{outcome}"
    );
    // Under the cap, both work.
    for path in ["big", "stream"] {
        let (outcome, texts) = fetch(
            &format!("http://127.0.0.1:{port}/{path}/8192"),
            limits.clone(),
        )
        .await;
        assert_eq!(outcome, Outcome::Success, "{path}");
        assert!(texts[0].starts_with("200 "), "{texts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start().await;
    let port = server.port;
    let limits = JobLimits {
        http_timeout: Duration::from_millis(500),
        ..allow(&[format!("127.0.0.1:{port}")], false)
    };
    let started = std::time::Instant::now();
    let (outcome, _) = fetch(&format!("http://127.0.0.1:{port}/stall"), limits).await;
    assert!(failed_with(&outcome, "ConnectionReadTimeout"), "{outcome}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoarding_resources_fails_only_that_job() {
    let runtime = runtime(2);
    let faulty = load(&runtime, guests::FAULTY);
    let rooms = SimRooms::default();
    let limits = JobLimits {
        max_resources: 256,
        ..JobLimits::default()
    };
    let (hoarder, healthy) = tokio::join!(
        run_job(
            &runtime,
            &faulty,
            &rooms,
            faulty_job("AJ_hoard", Mode::Resources),
            limits.clone()
        ),
        run_job(
            &runtime,
            &faulty,
            &rooms,
            faulty_job("AJ_fine", Mode::Ok),
            limits
        ),
    );
    assert_eq!(
        hoarder,
        Outcome::Failed("resource limit of 256 handles exceeded".into())
    );
    assert_eq!(healthy, Outcome::Success);
}
