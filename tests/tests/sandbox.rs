//! No ambient authority: a guest sees no host files, no environment, no
//! sockets and no name resolution.

use std::net::TcpListener;

use agent_host::room::sim::SimRooms;
use agent_host::{JobLimits, Outcome};
use agent_host_tests::{faulty_job, guests, load, run_job, runtime};
use faulty_mode::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_cannot_reach_files_env_or_network() {
    // A real listener the guest is told to connect to: it must see nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let runtime = runtime(2);
    let plugin = load(&runtime, guests::FAULTY);
    let outcome = run_job(
        &runtime,
        &plugin,
        &SimRooms::default(),
        faulty_job("AJ_sandbox", Mode::Sandbox(Some(port))),
        JobLimits::default(),
    )
    .await;
    // The guest reports every attempt that worked as a failure.
    assert_eq!(outcome, Outcome::Success);
    assert!(
        listener.accept().is_err(),
        "the guest reached a host socket"
    );
    // And the probe really probes: the process itself has an environment
    // and a readable /etc/passwd that the guest did not see.
    assert!(std::env::vars().next().is_some());
    assert!(std::fs::read("/etc/passwd").is_ok());
}
