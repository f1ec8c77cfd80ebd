//! Prewarm (WIT 0.1.5): a plugin's `prewarm` runs once per version, before
//! any job, and every job starts from the state it left; a prewarm that
//! fails refuses the version, in `check`, at load and in a hot swap; the
//! compile cache and `agent-host compile` keep the snapshot, so a warm
//! start does not run it again.
//!
//! Guests: `examples/prewarm` (a 10 MB table) and `tests/guests/prewarm-faulty`,
//! whose mode this file rewrites in its data ([`faulty_version`]).

use std::sync::Arc;

use agent_host::room::sim::SimRooms;
use agent_host::{
    JobLimits, Outcome, Plugin, PluginError, PluginSlot, Prewarm, Runtime, RuntimeConfig,
};
use agent_host_tests::{agent_host_command, guests, request, run_job};

/// The 32 bytes `prewarm-faulty` reads its mode from, as built.
const MODE_AS_BUILT: &[u8; 32] = b"prewarm-mode:ok.................";

/// `prewarm-faulty` with its mode rewritten to `mode`: a version of its
/// own (its digest changes with the bytes).
fn faulty_version(mode: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(guests::PREWARM_FAULTY).unwrap();
    let at: Vec<usize> = bytes
        .windows(MODE_AS_BUILT.len())
        .enumerate()
        .filter(|(_, w)| w == MODE_AS_BUILT)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the mode is in the component exactly once");
    let mut field = format!("prewarm-mode:{mode}").into_bytes();
    assert!(field.len() <= MODE_AS_BUILT.len(), "mode {mode:?} too long");
    field.resize(MODE_AS_BUILT.len(), b'.');
    bytes[at[0]..at[0] + field.len()].copy_from_slice(&field);
    bytes
}

/// A runtime whose compile cache is `cache` (none: compile every time).
fn runtime_with_cache(cache: Option<&std::path::Path>) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_jobs: 4,
        cache_dir: cache.map(Into::into),
        allow_precompiled: true,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Runs one job of `plugin` (metadata `metadata`) in a sim room; its
/// outcome and what it said.
async fn one_job(runtime: &Runtime, plugin: &Arc<Plugin>, metadata: &str) -> (Outcome, String) {
    let rooms = SimRooms::default();
    let job = request("AJ_prewarm", metadata);
    let mut outputs = rooms.room(&job.room.name).subscribe();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run_job(runtime, plugin, &rooms, job, JobLimits::default()),
    )
    .await
    .expect("the job ends in time");
    let mut said = Vec::new();
    while let Ok(out) = outputs.try_recv() {
        said.extend(agent_host_tests::sim::text(out));
    }
    assert_eq!(said.len(), 1, "the job said one line: {said:?}");
    (outcome, said.remove(0))
}

/// `examples/prewarm`'s `entry`, to check what a job read.
fn entry(i: u32) -> u32 {
    let mut z = i.wrapping_add(0x9e37_79b9);
    z = (z ^ (z >> 16)).wrapping_mul(0x85eb_ca6b);
    z = (z ^ (z >> 13)).wrapping_mul(0xc2b2_ae35);
    z ^ (z >> 16)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_starts_with_the_table_prewarm_built() {
    let runtime = runtime_with_cache(None);
    let plugin = runtime
        .load_plugin(&std::fs::read(guests::PREWARM).unwrap())
        .unwrap();
    assert!(
        matches!(plugin.prewarm(), Prewarm::Ran(_)),
        "{:?}",
        plugin.prewarm()
    );
    let expected = format!("table[1234567] = {}", entry(1_234_567));
    let mut first = None;
    for _ in 0..2 {
        let (outcome, said) = one_job(&runtime, &plugin, "").await;
        assert_eq!(outcome, Outcome::Success, "{said}");
        assert!(said.ends_with(", prewarmed"), "{said}");
        assert!(said.contains("table: 2621440 entries"), "{said}");
        assert!(said.contains(&expected), "{said}");
        // Each job reads the same state: the snapshot, not a previous job's.
        assert_eq!(first.get_or_insert_with(|| said.clone()), &said);
    }
    // The same table built in `run` reads the same.
    let (outcome, said) = one_job(&runtime, &plugin, "in-run").await;
    assert_eq!(outcome, Outcome::Success, "{said}");
    let prewarmed = first.unwrap();
    assert_eq!(
        said.replace("built in run", "prewarmed"),
        prewarmed,
        "the table built in run is the one prewarm built"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prewarm_that_misbehaves_refuses_the_version_with_its_reason() {
    let runtime = runtime_with_cache(None);
    let cases = [
        ("fail", "it returned an error: no table today"),
        ("trap", "unreachable"),
        ("hoard", "memory limit 64 MiB exceeded"),
        ("job", "it called `agent-host:agent/job#info`"),
        ("handle", "handle still open"),
        ("spin", "it was still running after 30s"),
    ];
    for (mode, reason) in cases {
        match runtime.load_plugin(&faulty_version(mode)) {
            Err(PluginError::Prewarm(got)) => {
                assert!(got.contains(reason), "{mode}: {got:?} lacks {reason:?}");
                let text = PluginError::Prewarm(got).to_string();
                assert!(text.starts_with("prewarm failed, the version is refused: "));
            }
            Err(other) => panic!("{mode}: refused for another reason: {other}"),
            Ok(_) => panic!("{mode}: the version was accepted"),
        }
    }
    // The same component in its `ok` mode is accepted: the refusals are
    // the prewarm's doing. That prewarm uses a `HashMap`, `Instant`,
    // `SystemTime` and the environment (what Rust's std reaches for by
    // itself: `wasi:random`, `wasi:clocks`, `wasi:cli/environment`).
    let plugin = runtime.load_plugin(&faulty_version("ok")).unwrap();
    for _ in 0..2 {
        let (outcome, said) = one_job(&runtime, &plugin, "").await;
        assert_eq!(outcome, Outcome::Success);
        // Each job adds one to the value it found: the second job starts
        // from the snapshot, not from the first job's memory.
        assert_eq!(said, "prewarmed 6700417");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swapped_version_is_prewarmed_before_it_takes_jobs() {
    let runtime = runtime_with_cache(None);
    let echo = runtime
        .load_plugin(&std::fs::read(guests::ECHO).unwrap())
        .unwrap();
    assert_eq!(echo.prewarm(), Prewarm::None);
    let slot = PluginSlot::new(runtime.clone(), echo);

    let swap = slot
        .swap(&faulty_version("ok"))
        .expect("the swap is accepted");
    let current = slot.current();
    assert_eq!(current.version(), &swap.new);
    assert!(
        matches!(current.prewarm(), Prewarm::Ran(_)),
        "prewarm ran while the version loaded, before it became current"
    );
    let (outcome, said) = one_job(&runtime, &current, "").await;
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(said, "prewarmed 6700417", "the first job sees the state");

    // A version whose prewarm fails is refused; the old one stays current.
    let refused = slot.swap(&faulty_version("fail"));
    assert!(
        matches!(&refused, Err(PluginError::Prewarm(reason)) if reason.contains("no table today")),
        "{refused:?}"
    );
    assert_eq!(slot.current().version(), &swap.new);
    let (_, said) = one_job(&runtime, &slot.current(), "").await;
    assert_eq!(said, "prewarmed 6700417");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_and_compile_keep_the_snapshot_so_prewarm_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let bytes = faulty_version("ok");

    let cold = runtime_with_cache(Some(&cache))
        .load_plugin(&bytes)
        .unwrap();
    assert!(matches!(cold.prewarm(), Prewarm::Ran(_)));
    assert!(!cold.from_cache());

    // A restart: another runtime, the same cache.
    let runtime = runtime_with_cache(Some(&cache));
    let warm = runtime.load_plugin(&bytes).unwrap();
    assert_eq!(warm.prewarm(), Prewarm::Cached, "prewarm did not run again");
    assert!(warm.from_cache());
    assert_eq!(warm.version(), cold.version(), "same identity");
    assert_eq!(
        warm.version().digest,
        agent_host::runtime::digest(&bytes),
        "the identity is the original component's digest"
    );
    let (_, said) = one_job(&runtime, &warm, "").await;
    assert_eq!(
        said, "prewarmed 6700417",
        "the cached snapshot holds the state"
    );

    // `agent-host compile`: the .cwasm holds the snapshot.
    let cwasm = runtime.precompile(&bytes).unwrap();
    let path = dir.path().join("prewarm-faulty.cwasm");
    std::fs::write(&path, cwasm).unwrap();
    let fresh = runtime_with_cache(None);
    let precompiled = fresh.load_plugin_file(&path).unwrap();
    assert_eq!(precompiled.prewarm(), Prewarm::Precompiled);
    assert_eq!(precompiled.version(), cold.version());
    let (_, said) = one_job(&fresh, &precompiled, "").await;
    assert_eq!(said, "prewarmed 6700417");
}

#[test]
fn check_says_whether_a_plugin_prewarms_and_refuses_a_failing_prewarm() {
    let out = agent_host_command()
        .args(["check", guests::PREWARM])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("  prewarm:       ran in "), "{stdout}");
    assert!(stdout.contains("    prewarm: func"), "{stdout}");

    let out = agent_host_command()
        .args(["check", guests::ECHO])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("  prewarm:       no "), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("failing.wasm");
    std::fs::write(&failing, faulty_version("fail")).unwrap();
    let out = agent_host_command()
        .arg("check")
        .arg(&failing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "prewarm failed, the version is refused: it returned an error: no table today"
        ),
        "{stderr}"
    );
}
