//! Parrot: repeats what it hears after a pause. Voice in, voice out, no
//! external service.
//!
//! It publishes a track called `parrot`, listens to every participant, and
//! records a phrase from the first voiced frame until 600 ms of quiet (or 10
//! seconds in all); then it plays the phrase back. If someone speaks while
//! it plays, it stops at once (barge-in: the queued audio is cleared) and
//! records the new phrase. Its `lk.agent.state` attribute says whether it is
//! `listening` or `speaking`, as LiveKit agents do.
//!
//! Timing is counted in audio, not wall-clock time, so it behaves the same
//! in the console's simulated room, where audio arrives faster than real
//! time.

use agent_host_sdk::{Agent, AudioFormat, Event, JobContext, RoomError, RoomEvent};

/// What parrot hears and says in.
const FORMAT: AudioFormat = AudioFormat::MONO_48K;
/// A frame louder than this (RMS of 16-bit samples) is speech.
const VOICE_RMS: f64 = 300.0;
/// Quiet that ends a phrase.
const PAUSE_MS: u32 = 600;
/// The longest phrase parrot keeps.
const MAX_PHRASE_MS: u32 = 10_000;
/// How much it plays between looks at the room, so barge-in is quick.
const CHUNK_MS: u32 = 100;

struct Parrot;

/// A phrase being recorded.
#[derive(Default)]
struct Phrase {
    samples: Vec<i16>,
    /// Samples since the last voiced frame.
    quiet: usize,
}

impl Agent for Parrot {
    fn run(ctx: JobContext) -> Result<(), String> {
        let room = ctx.room();
        let audio = ctx.audio();
        audio.publish("parrot", FORMAT)?;
        for participant in room.participants() {
            audio.subscribe(&participant.identity, FORMAT)?;
        }
        set_state(&ctx, "listening")?;
        let mut phrase: Option<Phrase> = None;
        for event in room.all_events() {
            match event {
                Event::Room(RoomEvent::ParticipantJoined(p)) => {
                    audio.subscribe(&p.identity, FORMAT)?;
                }
                Event::Audio(frame) => {
                    if let Some(done) = hear(&mut phrase, &frame.samples) {
                        agent_host_sdk::info!(
                            "repeating {} ms heard from {}",
                            done.len() as u64 * 1_000 / u64::from(FORMAT.sample_rate),
                            frame.participant
                        );
                        phrase = match play(&ctx, &done) {
                            Ok(next) => next,
                            // The room ended mid-phrase (the last listener
                            // left): not a failure; the events end next.
                            Err(RoomError::Closed) => None,
                            Err(err) => return Err(err.into()),
                        };
                    }
                }
                Event::Room(RoomEvent::Closed(reason)) => {
                    agent_host_sdk::info!("room closed: {reason:?}");
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Adds a frame to the phrase being recorded (starting one on speech).
/// Returns the phrase when it is over.
fn hear(phrase: &mut Option<Phrase>, samples: &[i16]) -> Option<Vec<i16>> {
    let voiced = rms(samples) > VOICE_RMS;
    let recording = match phrase {
        Some(recording) => recording,
        None if voiced => phrase.insert(Phrase::default()),
        None => return None,
    };
    recording.samples.extend_from_slice(samples);
    recording.quiet = if voiced {
        0
    } else {
        recording.quiet + samples.len()
    };
    let over = recording.quiet >= FORMAT.samples_in(PAUSE_MS)
        || recording.samples.len() >= FORMAT.samples_in(MAX_PHRASE_MS);
    if !over {
        return None;
    }
    let mut done = phrase.take()?;
    let spoken = done.samples.len() - done.quiet.min(done.samples.len());
    done.samples.truncate(spoken);
    Some(done.samples)
}

/// Plays `samples`, looking at the room between chunks. Returns the new
/// phrase if someone barged in.
fn play(ctx: &JobContext, samples: &[i16]) -> Result<Option<Phrase>, RoomError> {
    let audio = ctx.audio();
    set_state(ctx, "speaking")?;
    for chunk in samples.chunks(FORMAT.samples_in(CHUNK_MS)) {
        audio.write(chunk)?;
        while let Some(event) = ctx.room().next(Some(std::time::Duration::ZERO)) {
            match event {
                Event::Audio(frame) if rms(&frame.samples) > VOICE_RMS => {
                    agent_host_sdk::info!("{} barged in", frame.participant);
                    audio.clear()?;
                    set_state(ctx, "listening")?;
                    let mut barge = None;
                    hear(&mut barge, &frame.samples);
                    return Ok(barge);
                }
                Event::Room(RoomEvent::ParticipantJoined(p)) => {
                    audio.subscribe(&p.identity, FORMAT)?;
                }
                Event::Room(RoomEvent::Closed(_)) => return Ok(None),
                _ => {}
            }
        }
    }
    set_state(ctx, "listening")?;
    Ok(None)
}

/// Publishes the agent state the way LiveKit agents do.
fn set_state(ctx: &JobContext, state: &str) -> Result<(), RoomError> {
    ctx.room().set_attributes([("lk.agent.state", state)])
}

/// Root mean square of 16-bit samples.
fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

agent_host_sdk::export_agent!(Parrot);
