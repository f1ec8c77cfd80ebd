//! Hostile guests against a worker and fake-livekit: no guest decides how
//! big the worker's messages, its log lines or its room actions are.
//!
//! Every attack runs as one job of the `faulty` guest on one worker, next
//! to healthy jobs: an enormous function name (256 KiB, in the component's
//! name section) followed by each way of failing, enormous failure texts,
//! panics and output, accept fields over LiveKit's join limits, and
//! oversize topics and destination lists. fake-livekit closes a connection
//! with 1009 on a frame of 2 MiB or more, as the server does, so a frame
//! that slips through fails these tests.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use agent_host::config::job::{MAX_FAILURE_REASON, MAX_LOG_LINE};
use agent_host::worker::MAX_SEND_FRAME;
use agent_host_tests::worker::{
    WAIT, dispatch, first_answer, inbound, options, server, start_worker, wait_worker_status,
};
use fake_livekit::livekit_protocol::{JobStatus, WorkerMessage};
use fake_livekit::{Direction, DispatchOutcome, FakeLiveKit, JobId, JobRecord};
use faulty_mode::{HugeFailure, Mode, Oversize};
use prost::Message as _;

/// Room a log line may take beyond the line's own text: time, level,
/// span, target and field names.
const LINE_OVERHEAD: usize = 512;

/// Most log bytes one hostile job may cause, all lines together: a few
/// lines of at most a log line each. The attacks put megabytes into reach.
const JOB_LOG_BUDGET: usize = 64 << 10;

/// Everything the host logged in this test binary, at debug level.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_env_filter("agent_host=debug")
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        log
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines that name `job`.
fn job_lines(job: &JobId) -> Vec<String> {
    let log = log().lock().unwrap();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|line| line.contains(job.as_str()))
        .map(str::to_owned)
        .collect()
}

/// The job's log stays bounded, per line and in total, and never carries
/// the guest's 256 KiB function name in full.
fn assert_log_bounded(job: &JobId, mode: &Mode) {
    let lines = job_lines(job);
    assert!(!lines.is_empty(), "{mode}: no log line names {job}");
    let total: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert!(
        total <= JOB_LOG_BUDGET,
        "{mode}: {total} log bytes for one job"
    );
    for line in &lines {
        assert!(
            line.len() <= MAX_LOG_LINE + LINE_OVERHEAD,
            "{mode}: a log line of {} bytes: {}…",
            line.len(),
            &line[..line.floor_char_boundary(200)]
        );
        assert!(
            !line.contains(&"x".repeat(1024)),
            "{mode}: the guest's name reached the log"
        );
    }
}

/// Log lines shortened for a failure message.
fn short(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| format!("{} ({} bytes)", &l[..l.floor_char_boundary(300)], l.len()))
        .collect()
}

/// What the worker reported for a failed job.
async fn failed_reason(server: &FakeLiveKit, job: &JobId, mode: &Mode) -> String {
    let record = wait_worker_status(server, job, JobStatus::JsFailed).await;
    let reason = record
        .status_history
        .iter()
        .find(|c| c.status == JobStatus::JsFailed)
        .map(|c| c.error.clone())
        .unwrap();
    assert!(
        reason.len() <= MAX_FAILURE_REASON,
        "{mode}: a failure reason of {} bytes",
        reason.len()
    );
    assert!(!reason.contains("xxxxxxxxxxxxxxxx"), "{mode}: {reason}");
    assert!(!reason.contains("wasm backtrace"), "{mode}: {reason}");
    reason
}

/// The worker's one connection held: no 1009, no reconnect, every frame
/// under the worker's cap.
fn assert_connection_held(server: &FakeLiveKit) {
    let messages = server.messages();
    assert_eq!(
        server.size_limit_closes(),
        0,
        "the server closed the worker with 1009"
    );
    let connects = messages
        .iter()
        .filter(|m| matches!(m.dir, Direction::Connected { .. }))
        .count();
    let closes: Vec<_> = messages
        .iter()
        .filter(|m| matches!(m.dir, Direction::Closed { .. }))
        .map(|m| format!("{:?}", m.dir))
        .collect();
    assert_eq!((connects, closes.len()), (1, 0), "{closes:?}");
    let largest = inbound(&messages)
        .into_iter()
        .map(|m| WorkerMessage { message: Some(m) }.encoded_len())
        .max()
        .unwrap_or_default();
    assert!(largest <= MAX_SEND_FRAME, "a frame of {largest} bytes");
    println!("largest frame the server received: {largest} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jobs_cost_nobody_their_connection() {
    log();
    let server = server().await;
    let worker = start_worker(options(&server, "hostile", 64));
    server.wait_for_workers(1, WAIT).await.unwrap();

    // Each failing attack and what its reason must still say.
    let failing = [
        (Mode::HugeName(HugeFailure::Exit), "exit status 1"),
        (
            Mode::HugeName(HugeFailure::HostCall),
            "fuel allocated for hostcalls has been exhausted",
        ),
        (Mode::HugeName(HugeFailure::Trap), "unreachable"),
        (
            Mode::HugeName(HugeFailure::Panic),
            "guest panicked: faulty: panicking under a huge name",
        ),
        (Mode::HugeErr, "faulty: eeee"),
        (Mode::HugePanic, "guest panicked: faulty: pppp"),
    ];
    // Attacks the host answers without failing the job.
    let succeeding = [
        Mode::HugeOutput,
        Mode::HugeFields,
        Mode::Sleep(300),
        Mode::Sleep(300),
    ];
    let declined = [
        Oversize::Identity,
        Oversize::Name,
        Oversize::Metadata,
        Oversize::Attributes,
    ]
    .map(Mode::AcceptOversize);

    let failing_jobs: Vec<_> = failing
        .iter()
        .map(|(mode, _)| dispatch(&server, "hostile", mode))
        .collect();
    let succeeding_jobs: Vec<_> = succeeding
        .iter()
        .map(|mode| dispatch(&server, "hostile", mode))
        .collect();
    let declined_jobs: Vec<_> = declined
        .iter()
        .map(|mode| dispatch(&server, "hostile", mode))
        .collect();

    for (job, (mode, says)) in failing_jobs.iter().zip(&failing) {
        let reason = failed_reason(&server, job, mode).await;
        println!(
            "{mode}: {} bytes: {}",
            reason.len(),
            &reason[..reason.floor_char_boundary(160)]
        );
        assert!(reason.contains(says), "{mode}: {reason}");
        if matches!(mode, Mode::HugeErr | Mode::HugePanic) {
            assert!(reason.contains("… [truncated "), "{mode}: {reason}");
        }
    }
    for (job, mode) in succeeding_jobs.iter().zip(&succeeding) {
        let record = wait_worker_status(&server, job, JobStatus::JsSuccess).await;
        assert!(
            !record.saw_status(JobStatus::JsFailed),
            "{mode}: {record:?}"
        );
    }
    for (job, mode) in declined_jobs.iter().zip(&declined) {
        let record = server
            .wait_for_job(job, WAIT, "dispatch outcome", |j| {
                j.outcome != DispatchOutcome::Pending
            })
            .await
            .unwrap();
        assert_declined(&record, mode);
    }

    assert_connection_held(&server);
    for (job, mode) in failing_jobs
        .iter()
        .zip(failing.iter().map(|(mode, _)| mode))
        .chain(succeeding_jobs.iter().zip(&succeeding))
        .chain(declined_jobs.iter().zip(&declined))
    {
        assert_log_bounded(job, mode);
    }
    // The guest's huge lines reached the log, cut and marked.
    let output = job_lines(&succeeding_jobs[0]);
    for stream in ["stdout", "stderr"] {
        assert!(
            output
                .iter()
                .any(|l| l.contains(stream) && l.contains("… [truncated 314")),
            "no cut {stream} line: {:?}",
            short(&output)
        );
    }
    // A backtrace is logged at debug level, its names cut.
    let traces: Vec<String> = job_lines(&failing_jobs[0])
        .into_iter()
        .filter(|l| l.contains("guest backtrace"))
        .collect();
    assert!(
        traces
            .iter()
            .any(|l| l.contains("huge_name_xxx") && l.contains("[truncated 262")),
        "{:?}",
        short(&traces)
    );
    worker.handle.stop();
    let _ = worker.task.await;
}

/// The accept was answered as a decline, and the log says why.
fn assert_declined(record: &JobRecord, mode: &Mode) {
    let answer = first_answer(record).unwrap_or_else(|| panic!("{mode}: no answer"));
    assert!(!answer.available, "{mode}: accepted {answer:?}");
    let lines = job_lines(&record.id);
    assert!(
        lines.iter().any(|l| l.contains("declining offer")
            && l.contains("LiveKit lets an agent join with at most")),
        "{mode}: {:?}",
        short(&lines)
    );
}

/// The console and `connect` share the offer: an accept over the join
/// limits is refused there too, with a reason naming the field.
#[tokio::test]
async fn an_oversize_accept_is_refused_outside_the_worker_too() {
    let runtime = agent_host_tests::runtime(4);
    let plugin = agent_host_tests::load(&runtime, agent_host_tests::guests::FAULTY);
    for (field, says) in [
        (Oversize::Identity, "identity of 257 bytes"),
        (Oversize::Name, "name of 257 bytes"),
        (Oversize::Metadata, "metadata of 524289 bytes"),
        (Oversize::Attributes, "attributes of 65537 bytes"),
    ] {
        let mode = Mode::AcceptOversize(field);
        let request = agent_host_tests::faulty_job("AJ_oversize", mode.clone());
        let err = runtime
            .offer(&plugin, request, agent_host::JobLimits::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("{mode} was accepted"));
        assert!(err.to_string().contains(says), "{mode}: {err}");
    }
}
