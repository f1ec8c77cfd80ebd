//! Room audio in the sim room, and WIT compatibility: `parrot` repeats a
//! phrase sample for sample after a pause and stops when someone barges in;
//! every misuse of the audio import gets a reason; `audio.unsubscribe` stops
//! a participant's frames; a guest built against WIT 0.1.0 still runs on
//! this host.

use agent_host::Outcome;
use agent_host::room::sim::{SimOutput, tone};
use agent_host::wit::audio::AudioFormat;
use agent_host_tests::guests;
use agent_host_tests::sim::{WAIT, next, start, text};
use faulty_mode::Mode;
use tokio::sync::mpsc::UnboundedReceiver;

const MONO_48K: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 1,
};

fn state(output: SimOutput) -> Option<String> {
    match output {
        SimOutput::Attributes { attributes, .. } => attributes
            .into_iter()
            .find(|(k, _)| k == "lk.agent.state")
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Collects what the agent plays until it says it listens again.
async fn played(outputs: &mut UnboundedReceiver<SimOutput>) -> (Vec<i16>, bool) {
    let mut samples = Vec::new();
    let mut cleared = false;
    next(outputs, |output| match output {
        SimOutput::Audio { samples: s, .. } => {
            samples.extend(s);
            None
        }
        SimOutput::AudioCleared { .. } => {
            cleared = true;
            None
        }
        other => (state(other).as_deref() == Some("listening")).then_some(()),
    })
    .await;
    (samples, cleared)
}

fn silence(ms: u32) -> Vec<i16> {
    vec![0; (MONO_48K.sample_rate / 1000 * ms) as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parrot_repeats_a_phrase_after_a_pause() {
    let (room, mut outputs, outcome) = start(guests::PARROT, "AJ_parrot", "").await;
    let (name, format) = next(&mut outputs, |o| match o {
        SimOutput::AudioPublished { name, format, .. } => Some((name, format)),
        _ => None,
    })
    .await;
    assert_eq!((name.as_str(), format), ("parrot", MONO_48K));
    assert_eq!(next(&mut outputs, state).await, "listening");

    let phrase = tone(MONO_48K, 440, 500);
    let mut speech = silence(200);
    speech.extend(&phrase);
    speech.extend(silence(1_000));
    room.speak("alice", MONO_48K, &speech);

    assert_eq!(next(&mut outputs, state).await, "speaking");
    let (repeated, cleared) = played(&mut outputs).await;
    assert!(!cleared);
    assert_eq!(
        repeated.len(),
        phrase.len(),
        "the phrase without the silence around it"
    );
    assert_eq!(repeated, phrase, "repeated sample for sample");

    room.close();
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parrot_stops_and_listens_when_someone_barges_in() {
    let (room, mut outputs, outcome) = start(guests::PARROT, "AJ_barge", "").await;
    assert_eq!(next(&mut outputs, state).await, "listening");

    // The first phrase ends (600 ms of quiet); the second starts while the
    // first is being played back.
    let first = tone(MONO_48K, 440, 500);
    let second = tone(MONO_48K, 660, 300);
    let mut speech = first.clone();
    speech.extend(silence(700));
    speech.extend(&second);
    speech.extend(silence(1_000));
    room.speak("alice", MONO_48K, &speech);

    let (interrupted, cleared) = played(&mut outputs).await;
    assert!(cleared, "the queued audio is dropped on barge-in");
    assert!(
        !interrupted.is_empty() && interrupted.len() < first.len(),
        "only the start of the first phrase was played: {} samples",
        interrupted.len()
    );
    assert_eq!(interrupted, first[..interrupted.len()]);
    let (repeated, _) = played(&mut outputs).await;
    assert_eq!(repeated, second, "then the second phrase is repeated");

    room.close();
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_misuse_gets_reasons() {
    let (_room, mut outputs, outcome) =
        start(guests::FAULTY, "AJ_misuse", &Mode::AudioMisuse.to_string()).await;
    let mut lines = Vec::new();
    while lines.len() < 8 {
        lines.push(
            next(&mut outputs, |o| match o {
                SimOutput::Text { text, .. } => Some(text.text),
                _ => None,
            })
            .await,
        );
    }
    let unsupported = "denied by the host: unsupported audio format 44100 Hz x 1 channels: \
                       use 8000, 16000, 24000 or 48000 Hz, 1 or 2 channels";
    assert_eq!(
        lines,
        [
            format!("subscribe at 44.1 kHz: {unsupported}"),
            "write before publish: denied by the host: publish the audio track before writing to it"
                .to_owned(),
            format!("publish at 44.1 kHz: {unsupported}"),
            "publish: ok".to_owned(),
            "publish again: denied by the host: the job has already published its audio track"
                .to_owned(),
            "write 1 s: ok".to_owned(),
            "write 1 s + 1 sample: payload too large: the host allows 96000 bytes".to_owned(),
            "clear: ok".to_owned(),
        ]
    );
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_built_against_wit_0_1_0_still_runs() {
    let (room, mut outputs, outcome) = start(guests::LEGACY, "AJ_legacy", "").await;
    next(&mut outputs, |o| {
        matches!(o, SimOutput::AgentJoined(_)).then_some(())
    })
    .await;
    room.send_text("alice", "lk.chat", "still there?", &[]);
    let (text, destinations) = next(&mut outputs, |o| match o {
        SimOutput::Text { text, .. } => Some((text.text, text.destinations)),
        _ => None,
    })
    .await;
    assert_eq!(text, "legacy: still there?");
    assert_eq!(destinations, ["alice"]);
    room.close();
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_stops_a_participants_audio() {
    let mode = Mode::AudioUnsubscribe("alice".to_owned());
    let (room, mut outputs, outcome) =
        start(guests::FAULTY, "AJ_unsubscribe", &mode.to_string()).await;
    assert_eq!(next(&mut outputs, text).await, "subscribed");
    // One 10 ms frame: what the guest waits for before it unsubscribes.
    room.speak("alice", MONO_48K, &[100; 480]);
    assert_eq!(next(&mut outputs, text).await, "unsubscribed");
    // A second of audio after the unsubscribe reaches nobody.
    room.speak("alice", MONO_48K, &vec![100; 48_000]);
    assert_eq!(
        next(&mut outputs, text).await,
        "frames after unsubscribe: 0"
    );
    let outcome = tokio::time::timeout(WAIT, outcome).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}
