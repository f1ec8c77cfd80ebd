//! The `faulty` guest's modes: every mode it accepts is used by some test
//! (the `assert_test_exists` check of wasmtime's `crates/test-programs`),
//! and the imports no other guest calls do what the WIT says in the sim
//! room: `job.shutdown` ends the room's events with
//! `closed(shutdown-requested)` and the job with success, `room.set-metadata`
//! replaces the agent's metadata.

use std::path::Path;

use agent_host::Outcome;
use agent_host::room::sim::SimOutput;
use agent_host_tests::guests;
use agent_host_tests::sim::{WAIT, next, start};
use faulty_mode::Mode;

/// Every mode of [`Mode::examples`] appears in the tests (`tests/tests`,
/// and the helpers in `tests/src`) in its typed form, `Mode::<Variant>`:
/// metadata spelt as text (`"sleep:500"`) does not count, so a scenario
/// cannot be misspelt nor a mode lose its last test unnoticed.
#[test]
fn every_mode_has_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    for dir in ["tests", "src"] {
        let dir = root.join(dir);
        for entry in std::fs::read_dir(&dir).expect("listing the tests") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                sources += &std::fs::read_to_string(&path).expect("reading a test");
            }
        }
    }
    let untested: Vec<String> = Mode::examples()
        .iter()
        .filter(|mode| {
            let debug = format!("{mode:?}");
            let variant = debug.split(['(', ' ']).next().unwrap_or_default();
            !uses_variant(&sources, variant)
        })
        .map(|mode| mode.name().to_owned())
        .collect();
    assert!(
        untested.is_empty(),
        "modes of faulty that no test in tests/tests uses as Mode::<Variant>: {untested:?}"
    );
}

/// Whether `sources` names `Mode::<variant>` as a whole path segment (a
/// longer variant with the same start does not count). The examples here
/// name no real variant, so this file covers no mode by its own text.
fn uses_variant(sources: &str, variant: &str) -> bool {
    let path = format!("Mode::{variant}");
    sources.match_indices(&path).any(|(at, _)| {
        !sources[at + path.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn a_variant_counts_only_as_a_whole_name() {
    assert!(uses_variant("[Mode::Nap, x]", "Nap"));
    assert!(uses_variant("Mode::Nap(10)", "Nap"));
    assert!(uses_variant("Mode::NapLong; Mode::Nap", "Nap"));
    assert!(!uses_variant("Mode::NapLong", "Nap"));
    assert!(!uses_variant("Mode::Nap_2", "Nap"));
    assert!(!uses_variant("\"nap\"", "Nap"));
    assert!(!uses_variant("\"nap:500\"", "Nap"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_asks_to_shut_down_sees_its_room_close_and_succeeds() {
    let mode = Mode::Shutdown("nothing left to do".to_owned());
    let (_room, mut outputs, outcome) =
        start(guests::FAULTY, "AJ_shutdown", &mode.to_string()).await;
    // The guest returns Ok only if a room action right after the call was
    // refused as closed and its events ended with closed(shutdown-requested);
    // anything else is its failure reason.
    let outcome = tokio::time::timeout(WAIT, outcome)
        .await
        .expect("the job ends after asking to")
        .unwrap();
    assert_eq!(outcome, Outcome::Success);
    let mut after = Vec::new();
    while let Ok(output) = outputs.try_recv() {
        if let SimOutput::Text { text, .. } = output {
            after.push(text.text);
        }
    }
    assert!(
        after.is_empty(),
        "a room action worked after job.shutdown: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_metadata_replaces_the_agents_metadata() {
    let mode = Mode::SetMetadata("{\"mood\":\"helpful\"}".to_owned());
    let (_room, mut outputs, outcome) =
        start(guests::FAULTY, "AJ_metadata", &mode.to_string()).await;
    let (from, metadata) = next(&mut outputs, |o| match o {
        SimOutput::Metadata { from, metadata } => Some((from, metadata)),
        _ => None,
    })
    .await;
    assert_eq!(metadata, "{\"mood\":\"helpful\"}");
    assert!(from.starts_with("agent"), "{from}");
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}
