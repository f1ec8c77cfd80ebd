//! Ahead-of-time plugins: process start → registered with a ~40 MiB plugin
//! (the `big` test guest: a trivial agent carrying 40 MiB of initialised
//! data, the size of a Python or JavaScript guest), loaded three ways:
//! - `.wasm`, cold cache: compiled at start;
//! - `.wasm`, warm cache: hashed (SHA-256 of 40 MiB) and loaded from the
//!   compile cache the cold run left;
//! - `.cwasm` from `agent-host compile`: read and loaded, no hashing.
//!
//! ```sh
//! cargo build --profile bench -p agent-host     # the binary under test
//! cargo bench -p agent-host-tests --bench aot    # 10 rounds
//! cargo test -p agent-host-tests --bench aot     # 1 round, a smoke run
//! ```
//!
//! Start → registered: spawn of `agent-host run` to the fake server's
//! register response (the e2e bench's definition), a fresh server each time.

use std::path::Path;
use std::time::{Duration, Instant};

use agent_host_tests::process::{Host, run_command};
use agent_host_tests::{agent_host_command, guests, workspace_root};
use fake_livekit::{Config, FakeLiveKit};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --bench aot` does not.
    let rounds = if std::env::args().any(|a| a == "--bench") {
        10
    } else {
        1
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let guests_target = workspace_root().join("target/guests");
    let big_wasm = guests_target.join("wasm32-wasip2/release/big.wasm");
    let big_cwasm = dir.path().join("big.cwasm");
    // `compile` builds the crate directory, which leaves the .wasm too.
    compile(
        &workspace_root().join("tests/guests/big"),
        &big_cwasm,
        &guests_target,
    );
    let small_cwasm = dir.path().join("faulty.cwasm");
    compile(Path::new(guests::FAULTY), &small_cwasm, &guests_target);
    println!(
        "big.wasm {:.1} MiB, big.cwasm {:.1} MiB",
        mib(&big_wasm),
        mib(&big_cwasm)
    );

    let small = format!("faulty .cwasm ({:.1} MiB), for scale", mib(&small_cwasm));
    let mut rows: Vec<(&str, Vec<Duration>)> = vec![
        ("big .wasm, cold cache", Vec::new()),
        ("big .wasm, warm cache", Vec::new()),
        ("big .cwasm", Vec::new()),
        (&small, Vec::new()),
    ];
    for _ in 0..rounds {
        let cache = tempfile::tempdir().expect("cache dir");
        let runs: [(&Path, &[&str]); 4] = [
            (&big_wasm, &[]),
            (&big_wasm, &[]),
            (&big_cwasm, &["--allow-precompiled"]),
            (&small_cwasm, &["--allow-precompiled"]),
        ];
        for ((plugin, flags), (_, samples)) in runs.into_iter().zip(rows.iter_mut()) {
            samples.push(start_to_registered(plugin, flags, cache.path()).await);
        }
    }
    println!("start → registered, {rounds} rounds: median / min (ms)");
    for (name, mut samples) in rows {
        samples.sort();
        println!(
            "  {name:<36} {:>8.1} / {:>8.1}",
            ms(samples[samples.len() / 2]),
            ms(samples[0])
        );
    }
}

/// `agent-host compile PLUGIN -o OUT`, building crates into `target_dir`.
fn compile(plugin: &Path, out: &Path, target_dir: &Path) {
    let status = agent_host_command()
        .arg("compile")
        .arg(plugin)
        .arg("-o")
        .arg(out)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .expect("running agent-host compile");
    assert!(status.success(), "compiling {}", plugin.display());
}

/// Spawns `agent-host run --plugin PLUGIN` against a fresh fake server and
/// returns spawn → register response.
async fn start_to_registered(plugin: &Path, flags: &[&str], cache: &Path) -> Duration {
    let server = FakeLiveKit::start(Config::default())
        .await
        .expect("starting the fake LiveKit server");
    let mut args = vec!["--plugin", plugin.to_str().unwrap()];
    args.extend_from_slice(flags);
    let mut command = run_command(
        &server.url(),
        &server.config().api_key,
        &server.config().api_secret,
        &args,
    );
    command.env("AGENT_HOST_CACHE_DIR", cache);
    let spawned = Instant::now();
    let _host = Host::new(command.spawn().expect("starting agent-host run"));
    let workers = server
        .wait_for_workers(1, Duration::from_secs(120))
        .await
        .expect("the worker registers");
    workers[0].registered_at.duration_since(spawned)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(path: &Path) -> f64 {
    std::fs::metadata(path).expect("plugin file").len() as f64 / (1 << 20) as f64
}
