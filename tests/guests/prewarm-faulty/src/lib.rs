//! A prewarm that misbehaves, one way per version.
//!
//! A prewarm has no job and no input, so its behaviour is chosen before it
//! runs: [`MODE`] is a fixed-size byte string in the component's data, and
//! `tests/tests/prewarm.rs` rewrites it in place (same length, so the
//! component stays valid) to make one version per mode. The rewrite
//! changes the digest, as a new build would.
//!
//! Modes (the text after `prewarm-mode:`, padded with `.`):
//! - `ok`: uses what Rust's std reaches for on its own (a `HashMap`, whose
//!   keys come from `wasi:random`; `Instant` and `SystemTime`, from
//!   `wasi:clocks`; the environment, from `wasi:cli/environment`) and logs,
//!   then stores [`ANSWER`]; each job says `prewarmed <n>` with the value it
//!   found and adds one to it, so a job that saw another job's write would
//!   say more;
//! - `fail`: returns `Err("no table today")`;
//! - `trap`: executes `unreachable`;
//! - `hoard`: allocates 1 MiB after 1 MiB until the memory limit stops it;
//! - `spin`: computes forever;
//! - `job`: asks for the job's info, which a prewarm has not (through the
//!   raw import: the SDK hands out a `JobContext` only in `run`);
//! - `handle`: returns with a pollable still open.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use agent_host_sdk::{Agent, JobContext};

/// The mode, as the tests rewrite it: 32 bytes.
#[used]
static MODE: [u8; 32] = *b"prewarm-mode:ok.................";

/// What the `ok` prewarm stores.
const ANSWER: u64 = 6_700_417;

/// [`ANSWER`] once the `ok` prewarm ran, else 0.
static STORED: AtomicU64 = AtomicU64::new(0);

/// [`MODE`]'s mode, read so that the compiler cannot assume its value.
fn mode() -> String {
    // SAFETY: `MODE` is a valid, aligned static; a volatile read keeps the
    // value the tests wrote into the data segment from being constant-folded.
    let bytes = unsafe { std::ptr::read_volatile(&MODE) };
    let text = String::from_utf8_lossy(&bytes[b"prewarm-mode:".len()..]).into_owned();
    text.trim_end_matches('.').to_string()
}

fn prewarm() -> Result<(), String> {
    match mode().as_str() {
        "ok" => {
            let started = Instant::now();
            let mut seen = HashMap::new();
            seen.insert("answer", ANSWER);
            let vars = std::env::vars().count();
            let since_epoch = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_err(|e| e.to_string())?;
            agent_host_sdk::info!(
                "prewarm: {vars} environment variables, {}s since the epoch, {:?}",
                since_epoch.as_secs(),
                started.elapsed()
            );
            STORED.store(seen["answer"], Ordering::Relaxed);
            Ok(())
        }
        "fail" => Err("no table today".into()),
        "trap" => std::process::abort(),
        "hoard" => {
            let mut hoard = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        "spin" => {
            let mut n = 0u64;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "job" => {
            let info = agent_host_sdk::__bindings::agent_host::agent::job::info();
            Err(format!("a prewarm saw job {}", info.id))
        }
        "handle" => {
            std::mem::forget(wasip2::clocks::monotonic_clock::subscribe_duration(1));
            Ok(())
        }
        other => Err(format!("unknown mode {other:?}")),
    }
}

struct PrewarmFaulty;

impl Agent for PrewarmFaulty {
    fn run(ctx: JobContext) -> Result<(), String> {
        let said = match STORED.fetch_add(1, Ordering::Relaxed) {
            0 => "not prewarmed".to_string(),
            value => format!("prewarmed {value}"),
        };
        ctx.room().send_text(&said)?;
        Ok(())
    }
}

agent_host_sdk::export_agent!(PrewarmFaulty, prewarm = prewarm);
