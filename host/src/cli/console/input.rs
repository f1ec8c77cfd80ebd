//! What the console user types, turned into room activity.
//!
//! A line is a chat message (`lk.chat`) unless it is a command (see
//! [`HELP`]). `/say` plays synthetic speech-like audio: a tone burst per
//! word ([`WORD_MS`], a pitch per word) with [`GAP_MS`] of silence between
//! words and [`TURN_END_MS`] after the last, enough for a voice-activity
//! detector to see a turn start and end; it is not speech, and a
//! speech-to-text service will not understand it. `/rpc` calls a method of
//! the agent; the console prints the answer, and at the end of input it
//! waits (at most the calls' timeout) for the calls in flight before it
//! closes the room ([`Typed`]).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::{mpsc, watch};

use agent_host::room::CallAnswer;
use agent_host::room::sim::{SimRoom, tone};
use agent_host::wit::audio::AudioFormat;

/// The format of what `/tone` and `/say` play: 48 kHz mono, LiveKit's
/// native rate.
const CONSOLE_AUDIO: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 1,
};

/// One word of `/say`: about a syllable pair of speech.
const WORD_MS: u32 = 300;
/// Silence between the words of `/say`: shorter than any end-of-turn pause.
const GAP_MS: u32 = 120;
/// Silence after `/say`'s last word (and after `/tone`): a pause that ends
/// the user's turn.
const TURN_END_MS: u32 = 1_000;
/// Longest `/tone`, and most words of one `/say`, so one line cannot queue
/// minutes of audio.
const MAX_TONE_MS: u32 = 10_000;
const MAX_WORDS: usize = 30;
/// How long `/rpc` waits for the agent's answer (LiveKit's default).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

const CHAT_TOPIC: &str = "lk.chat";

/// The commands, for the start banner and for an unknown command.
pub(super) const HELP: &str = "/join NAME, /leave NAME, /say TEXT (speech-like tones, for a VAD, \
     not for speech-to-text), /tone MS, /rpc METHOD PAYLOAD, /data TEXT, /metadata TEXT";

/// `n` milliseconds of silence.
fn silence(ms: u32) -> Vec<i16> {
    vec![0; (CONSOLE_AUDIO.sample_rate * ms / 1_000) as usize]
}

/// `/say`'s audio for `words`: a burst per word, gaps, a pause at the end.
fn speech_like(words: &[&str]) -> Vec<i16> {
    let mut samples = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            samples.extend(silence(GAP_MS));
        }
        // A pitch per word, in a voice's range, so words differ.
        let hz = 150 + (word.len() as u32 * 37) % 200;
        samples.extend(tone(CONSOLE_AUDIO, hz, WORD_MS));
    }
    samples.extend(silence(TURN_END_MS));
    samples
}

/// What the console's loop must see of the input: the calls it prints the
/// answers of, and the end of input, after which it closes the room once
/// those calls are answered. The loop, not this reader, prints the
/// answers, so that an answer the agent gave just before its job ended is
/// printed before the console exits.
pub(super) enum Typed {
    /// `/rpc`: the method called and its answer to come.
    Call { method: String, answer: CallAnswer },
    /// End of input.
    End,
}

/// Reads stdin until its end; `agent` is the identity of the running job's
/// agent.
pub(super) async fn read(
    room: SimRoom,
    me: String,
    agent: watch::Receiver<String>,
    typed: mpsc::UnboundedSender<Typed>,
) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (command, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let rest = rest.trim();
        match command {
            "/join" if !rest.is_empty() => room.join_identity(rest),
            "/leave" if !rest.is_empty() => {
                if !room.leave(rest) {
                    eprintln!("{rest} is not in the room");
                }
            }
            "/data" => room.send_data(&me, None, rest.as_bytes(), &[]),
            "/metadata" => room.set_metadata(rest),
            "/tone" => {
                let ms = rest.parse().unwrap_or(1_000).min(MAX_TONE_MS);
                let mut samples = tone(CONSOLE_AUDIO, 440, ms);
                samples.extend(silence(TURN_END_MS));
                room.speak(&me, CONSOLE_AUDIO, &samples);
                eprintln!("you played a {ms} ms tone");
            }
            "/say" if !rest.is_empty() => {
                let words: Vec<&str> = rest.split_whitespace().take(MAX_WORDS).collect();
                room.speak(&me, CONSOLE_AUDIO, &speech_like(&words));
                eprintln!("you said {} word(s) as tones", words.len());
            }
            "/rpc" if !rest.is_empty() => {
                let (method, payload) = rest.split_once(' ').unwrap_or((rest, ""));
                let answer = room.perform_rpc(&me, &agent.borrow(), method, payload, RPC_TIMEOUT);
                let method = method.to_string();
                // The loop outlives this reader; a send fails only once it
                // has ended, when nothing is left to print.
                let _ = typed.send(Typed::Call { method, answer });
            }
            _ if command.starts_with('/') => eprintln!("commands: {HELP}"),
            _ => room.send_text(&me, CHAT_TOPIC, &line, &[]),
        }
    }
    let _ = typed.send(Typed::End);
}

impl Typed {
    /// The line the console prints for a call's answer, once it comes
    /// (within the call's timeout).
    pub(super) async fn answered(method: String, answer: CallAnswer) -> String {
        match answer.await {
            Ok(answer) => format!("[rpc] {method} -> {answer}"),
            Err(e) => format!("[rpc] {method} failed: {} {}", e.code, e.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn say_is_a_burst_per_word_then_a_pause() {
        let samples = speech_like(&["hello", "there"]);
        let ms = |n: usize| n as u32 * 1_000 / CONSOLE_AUDIO.sample_rate;
        assert_eq!(ms(samples.len()), 2 * WORD_MS + GAP_MS + TURN_END_MS);
        let loud = |range: std::ops::Range<u32>| {
            let at = |ms: u32| (CONSOLE_AUDIO.sample_rate * ms / 1_000) as usize;
            samples[at(range.start)..at(range.end)]
                .iter()
                .any(|s| s.unsigned_abs() > 1_000)
        };
        assert!(loud(0..WORD_MS), "the first word");
        assert!(!loud(WORD_MS..WORD_MS + GAP_MS), "the gap");
        assert!(
            loud(WORD_MS + GAP_MS..2 * WORD_MS + GAP_MS),
            "the second word"
        );
        assert!(
            !loud(2 * WORD_MS + GAP_MS..ms(samples.len())),
            "the end of turn"
        );
    }
}
