//! The guest SDK's WebSocket client (`agent_host_sdk::websocket`) end to
//! end: the `ws-client` test guest against the loopback echo server
//! (`agent_host_tests::websocket`), sending and reading at once in one
//! task, under a send buffer small enough that `send` must wait for room,
//! then closing with its own code.

use std::sync::atomic::Ordering;

use agent_host::{HttpAllowList, JobLimits, Outcome};
use agent_host_tests::sim::{WAIT, next, start_with, text};
use agent_host_tests::{guests, websocket};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_client_streams_both_ways_and_closes_with_its_code() {
    let server = websocket::echo().await;
    let limits = JobLimits {
        http_allow: HttpAllowList::parse([format!("127.0.0.1:{}", server.port)], false).unwrap(),
        // About 20 of the guest's messages: `send` meets `would-block`
        // and waits on `subscribe-send` again and again.
        websocket_buffer_bytes: 256,
        ..JobLimits::default()
    };
    let metadata = format!("1000 {}", server.url("/echo"));
    let (_room, mut outputs, outcome) =
        start_with(guests::WS_CLIENT, "AJ_sdk_ws", &metadata, limits).await;
    assert_eq!(
        next(&mut outputs, text).await,
        "echoed 1000, close 4000 bye"
    );
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(server.seen.sent.load(Ordering::Relaxed), 1000);
    assert_eq!(*server.seen.close_codes.lock().unwrap(), [4000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_socket_is_a_clear_error_from_the_sdk() {
    let server = websocket::echo().await;
    let metadata = format!("1 {}", server.url("/echo"));
    let (_room, _outputs, outcome) = start_with(
        guests::WS_CLIENT,
        "AJ_sdk_ws_denied",
        &metadata,
        JobLimits::default(),
    )
    .await;
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert!(
        matches!(&outcome, Outcome::Failed(why) if why.starts_with("WebSocket denied by the host: ")),
        "{outcome:?}"
    );
    assert_eq!(server.seen.accepted.load(Ordering::Relaxed), 0);
}
