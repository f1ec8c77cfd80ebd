//! A room event to the guest and back while an HTTP stream is open: the
//! `assistant` guest holds a completion open from the fake OpenAI-compatible
//! provider, and a participant chats `ping` and waits for `pong`, round
//! after round. Printed as a table.
//!
//! ```sh
//! cargo bench -p agent-host-tests --bench llm    # 2,000 rounds
//! cargo test -p agent-host-tests --bench llm     # 50, as a smoke run
//! ```
//!
//! Each round is timed from `SimRoom::send_text` to the agent's `pong`
//! arriving at the test's receiver: the host's room inbox, the guest's
//! executor waking from its one `poll` (on the room, the open HTTP body and
//! nothing else), `send-text`, the sim room's output.

use std::time::{Duration, Instant};

use agent_host_tests::fake_openai::{FakeOpenAi, Script};
use agent_host_tests::percentile;
use agent_host_tests::sim::{next, text};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --bench llm` does not.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 50 } else { 2000 };
    let fake = FakeOpenAi::start(Script::Stream {
        deltas: vec!["open".into(), " done".into()],
        hold_after: Some(1),
    })
    .await;
    let (room, mut outputs, job) = fake.assistant("AJ_bench_llm", fake.limits(&[])).await;
    room.send_text("alice", "lk.chat", "stream something", &[]);
    assert_eq!(next(&mut outputs, text).await, "open", "the stream is open");

    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        room.send_text("alice", "lk.chat", "ping", &[]);
        assert_eq!(next(&mut outputs, text).await, "pong");
        times.push(started.elapsed());
    }
    fake.release();
    assert_eq!(
        next(&mut outputs, text).await,
        " done",
        "the stream was open throughout"
    );
    room.close();
    job.await.unwrap();

    times.sort();
    let total: Duration = times.iter().sum();
    println!("| figure | value |\n|---|---|");
    println!(
        "| chat `ping` → `pong` while an HTTP stream is open, p50 / p99 (n={rounds}) | {:.0?} / {:.0?} |",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    println!("| mean | {:.0?} |", total / rounds as u32);
}
