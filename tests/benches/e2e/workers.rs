//! The two workers under test, as child processes of the benchmark:
//! `agent-host run` with the `faulty` guest, and the official Python worker
//! running `agent.py` next to this file. Each reports when a job's body
//! starts into a [`BodyStarts`] map; each is killed (with everything it
//! started) when dropped.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_livekit::FakeLiveKit;
use fake_livekit::python::PyWorker;

use crate::jobs::{BodyStarts, Clock};
use crate::procfs::{self, Memory};

/// What the guest logs first thing in `run` (`examples/faulty`).
const BODY_LOG: &str = "faulty: mode ";

/// `agent-host run` serving `faulty` as `agent`; killed when dropped.
pub struct AgentHost {
    child: Child,
    /// When the process was spawned.
    pub spawned: Instant,
    /// Job id → when the guest's first log line in `run` was written.
    pub bodies: BodyStarts,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl AgentHost {
    /// Spawns the binary at `bin` with the compile cache in `cache`, an
    /// instance pool of `max_jobs` and no room I/O. Its load threshold is
    /// out of reach (2): the benchmark sizes the work itself, and on 2
    /// shared cores the CPU part of the default load would turn the worker
    /// away from jobs.
    pub fn spawn(
        bin: &Path,
        server: &FakeLiveKit,
        agent: &str,
        plugin: &str,
        cache: &Path,
        max_jobs: usize,
    ) -> AgentHost {
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .args(["--log-format", "json", "run", "--url", &server.url()])
            .args(["--api-key", &server.config().api_key])
            .args(["--api-secret", &server.config().api_secret])
            .args(["--agent-name", agent, "--plugin", plugin])
            .args(["--http-host", "127.0.0.1", "--http-port", "0"])
            .args(["--max-jobs", &max_jobs.to_string(), "--load-threshold", "2"])
            // Jobs run without room I/O (there is no RTC server), as the
            // Python worker's jobs never connect.
            .args(["--termination-grace", "100ms", "--no-room-io"])
            .env("AGENT_HOST_CACHE_DIR", cache)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let bodies = BodyStarts::default();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (b, t) = (bodies.clone(), tail.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((job, at)) = body_start(&line) {
                    b.lock().unwrap().insert(job, Clock::now().instant(at));
                }
                let mut t = t.lock().unwrap();
                if t.len() == 20 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        AgentHost {
            child,
            spawned,
            bodies,
            tail,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's memory.
    pub fn memory(&self) -> Memory {
        procfs::memory(self.pid())
    }
}

impl Drop for AgentHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- agent-host log (last lines) ---");
            for line in self.tail.lock().unwrap().iter() {
                eprintln!("{line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (job id, time) of the guest's first line in `run`, from a JSON log line.
fn body_start(line: &str) -> Option<(String, SystemTime)> {
    if !line.contains(BODY_LOG) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if !v["fields"]["message"].as_str()?.starts_with(BODY_LOG) {
        return None;
    }
    let job = v["span"]["job_id"].as_str()?.to_string();
    Some((job, parse_rfc3339(v["timestamp"].as_str()?)?))
}

/// `YYYY-MM-DDTHH:MM:SS[.f…]Z`, as tracing-subscriber writes it.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<u64>());
    let (h, min, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let nanos: u64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let secs = days * 86_400 + h * 3600 + min * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// The official Python worker running `agent.py` (in its own process group);
/// the group is killed when dropped.
pub struct Python {
    worker: PyWorker,
    /// When the process was spawned.
    pub spawned: Instant,
    /// Job id → when the job's entrypoint started (its own record).
    pub bodies: BodyStarts,
    reader: tokio::task::JoinHandle<()>,
}

impl Python {
    /// Starts `agent.py start` with `python` against `server` as `agent`.
    pub fn spawn(python: &Path, server: &FakeLiveKit, agent: &str) -> Python {
        let starts = std::env::temp_dir().join(format!(
            "agent-host-bench-starts-{}-{agent}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&starts);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/e2e/agent.py");
        let spawned = Instant::now();
        let worker = PyWorker::spawn_script(
            python,
            &script,
            server,
            agent,
            &[("BENCH_STARTS", starts.to_str().expect("a UTF-8 temp dir"))],
        );
        let bodies = BodyStarts::default();
        let reader = tokio::spawn(follow_starts(starts, bodies.clone()));
        Python {
            worker,
            spawned,
            bodies,
            reader,
        }
    }

    /// Every process of the worker (the worker and its job processes).
    pub fn pids(&self) -> Vec<u32> {
        procfs::group(self.worker.pid())
    }

    /// Memory summed over the worker and its job processes.
    pub fn memory(&self) -> Memory {
        procfs::group_memory(self.worker.pid())
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads `<job id> <unix ns>` lines appended to `path` into `bodies`, every
/// 5 ms, until aborted.
async fn follow_starts(path: PathBuf, bodies: BodyStarts) {
    let mut read = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let clock = Clock::now();
            // Only whole lines: a job may be writing one right now.
            let complete = text.rfind('\n').map_or(0, |i| i + 1);
            for line in text[read.min(complete)..complete].lines() {
                if let Some((job, ns)) = line.split_once(' ')
                    && let Ok(ns) = ns.parse::<u64>()
                {
                    let at = clock.instant(UNIX_EPOCH + Duration::from_nanos(ns));
                    bodies.lock().unwrap().insert(job.to_string(), at);
                }
            }
            read = complete;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
