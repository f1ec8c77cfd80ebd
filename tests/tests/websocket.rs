//! Outbound WebSockets end to end: the `faulty` guest on the raw
//! `websocket` import, in a sim room, against WebSocket servers on
//! loopback (`agent_host_tests::websocket`). A guest streams both ways
//! with one `poll`; a guest that hoards sockets is capped, is pushed back
//! by TCP instead of buffering a flood, and its sockets end with its job;
//! what sockets buffer counts against the job's host-memory budget; the
//! jobs beside them are unaffected.

use std::sync::atomic::Ordering;
use std::time::Duration;

use agent_host::net::{Network, NetworkConfig};
use agent_host::room::sim::SimRooms;
use agent_host::{HttpAllowList, JobLimits, Outcome};
use agent_host_tests::sim::{WAIT, next, start_with, text};
use agent_host_tests::tls::TlsTerminator;
use agent_host_tests::{faulty_job, guests, load, run_job, runtime, websocket};
use faulty_mode::Mode;

/// Limits that let a job reach `127.0.0.1:port`.
fn allowing(port: u16) -> JobLimits {
    JobLimits {
        http_allow: HttpAllowList::parse([format!("127.0.0.1:{port}")], false).unwrap(),
        ..JobLimits::default()
    }
}

/// Runs a `faulty` job that only reports `ok`, as the job beside.
async fn a_job_beside_succeeds() {
    let runtime = runtime(2);
    let plugin = load(&runtime, guests::FAULTY);
    let req = faulty_job("AJ_ws_beside", Mode::Ok);
    let outcome = tokio::time::timeout(
        WAIT,
        run_job(
            &runtime,
            &plugin,
            &SimRooms::default(),
            req,
            JobLimits::default(),
        ),
    )
    .await
    .expect("the job beside ends");
    assert_eq!(outcome, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_streams_over_a_websocket_both_ways() {
    let server = websocket::echo().await;
    let mode = Mode::WebsocketEcho {
        count: 2000,
        url: server.url("/echo"),
    };
    let (_room, mut outputs, outcome) = start_with(
        guests::FAULTY,
        "AJ_ws_echo",
        &mode.to_string(),
        allowing(server.port),
    )
    .await;
    assert_eq!(
        next(&mut outputs, text).await,
        "echoed 2000 of 2000, then WebsocketError::Closed(Some(CloseFrame { code: 1000, reason: \"done\" }))",
        "every echo, then the server's answer to the guest's close"
    );
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(server.seen.sent.load(Ordering::Relaxed), 2000);
    // The guest's close reached the server.
    tokio::time::timeout(WAIT, async {
        while server.seen.ended.load(Ordering::Relaxed) < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the connection ends");
    assert_eq!(*server.seen.close_codes.lock().unwrap(), [1000]);
    a_job_beside_succeeds().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_to_a_destination_not_allowed_fails_the_guest_cleanly() {
    let server = websocket::echo().await;
    let mode = Mode::WebsocketEcho {
        count: 1,
        url: server.url("/echo"),
    };
    let (_room, _outputs, outcome) = start_with(
        guests::FAULTY,
        "AJ_ws_denied",
        &mode.to_string(),
        JobLimits::default(),
    )
    .await;
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    let Outcome::Failed(reason) = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.contains("websocket connect: WebsocketError::Denied") && reason.contains("empty"),
        "{reason}"
    );
    assert_eq!(server.seen.accepted.load(Ordering::Relaxed), 0);
    a_job_beside_succeeds().await;
}

/// `wss` is checked against the host's roots, private CAs included: a
/// server behind a private CA is reached once the operator trusts the CA
/// (`--ca-file`), and refused as `connect-failed` naming TLS before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_trusts_the_hosts_roots_and_its_private_cas() {
    let server = websocket::echo().await;
    let tls = TlsTerminator::start(([127, 0, 0, 1], server.port).into()).await;
    let url = format!("{}/echo", tls.url());
    let port: u16 = url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mode = Mode::WebsocketEcho { count: 100, url };
    let untrusted = allowing(port);
    let (_room, _outputs, outcome) = start_with(
        guests::FAULTY,
        "AJ_wss_untrusted",
        &mode.to_string(),
        untrusted,
    )
    .await;
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert!(
        matches!(&outcome, Outcome::Failed(reason) if reason.contains("ConnectFailed") && reason.contains("TLS")),
        "{outcome:?}"
    );
    let trusted = JobLimits {
        network: Network::new(NetworkConfig {
            ca_files: vec![tls.ca_file().to_path_buf()],
            ..NetworkConfig::default()
        })
        .unwrap(),
        ..allowing(port)
    };
    let (_room, mut outputs, outcome) =
        start_with(guests::FAULTY, "AJ_wss_trusted", &mode.to_string(), trusted).await;
    assert!(
        next(&mut outputs, text)
            .await
            .starts_with("echoed 100 of 100")
    );
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

/// A guest opens sockets to a server that floods each one, until the host
/// refuses one, and reads none: it gets the job's cap of sockets, the
/// server is pushed back (it cannot send what it would), the job ends as
/// the guest says, and every socket ends with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_hoarding_sockets_is_capped_and_its_sockets_end_with_it() {
    // 16,384 messages of 64 KiB: 1 GiB per socket, far more than the
    // host's buffers and the kernel's hold.
    const COUNT: u64 = 16_384;
    let server = websocket::flood(COUNT, 64 << 10).await;
    let limits = allowing(server.port);
    let cap = limits.max_websockets;
    let mode = Mode::WebsocketHoard(server.url("/flood"));
    let (_room, mut outputs, outcome) =
        start_with(guests::FAULTY, "AJ_ws_hoard", &mode.to_string(), limits).await;
    assert_eq!(
        next(&mut outputs, text).await,
        format!("websockets: {cap}, then WebsocketError::TooManySockets({cap})")
    );
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success, "the host held the flood back");
    let sent = server.seen.sent.load(Ordering::Relaxed);
    assert!(
        sent < u64::from(cap) * COUNT / 4,
        "the server sent {sent} messages into unread sockets"
    );
    // The guest never closed them: the job's end did.
    tokio::time::timeout(Duration::from_secs(10), async {
        while server.seen.ended.load(Ordering::Relaxed) < u64::from(cap) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every socket ends with its job");
    assert_eq!(server.seen.accepted.load(Ordering::Relaxed), u64::from(cap));
    a_job_beside_succeeds().await;
}

/// What sockets buffer counts against the job's host-memory budget: 64
/// sockets whose inboxes a server fills need more than the default 16 MiB,
/// and the job fails with the budget's reason while a job beside it
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_outgrow_the_host_memory_budget_fail_their_job() {
    let server = websocket::flood(100_000, 16 << 10).await;
    let limits = JobLimits {
        max_websockets: 64,
        ..allowing(server.port)
    };
    let mode = Mode::WebsocketHoard(server.url("/flood"));
    let (_room, _outputs, outcome) =
        start_with(guests::FAULTY, "AJ_ws_budget", &mode.to_string(), limits).await;
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(
        outcome,
        Outcome::Failed("host memory limit 16 MiB exceeded (websockets)".into())
    );
    a_job_beside_succeeds().await;
}
