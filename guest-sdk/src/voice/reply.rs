//! One reply of a voice session: transcribe the user's utterance (when
//! the speech-to-text provider does not stream), then stream the LLM's
//! answer into speech sentence by sentence, reading the LLM while a
//! sentence plays, and write the agent's transcription as each sentence
//! starts playing.
//!
//! A reply is a task of its own, which the session's loop cancels on
//! barge-in; what the loop needs then (whether the user was heard, what
//! was spoken, the open transcription) is in [`ReplyShared`].
//!
//! Invariants: the reply's transcription is closed final exactly once, by
//! the reply when it ends or by the loop when it cancels it; the agent's
//! words go into the history once, by whichever of the two closes it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use futures_lite::future;

use super::history::{ChatMessage, History, Role};
use super::player::Player;
use super::provider::{AudioStream, Llm, Stt, Tts, VoiceError};
use super::sentences::Sentences;
use super::session::{
    AgentState, INPUT_RATE, SEGMENT_ID, StatePublisher, TRANSCRIBED_TRACK_ID, TRANSCRIPTION_FINAL,
    close_writer, segment_id, unless_closed,
};
use crate::streams::{self, TRANSCRIPTION_TOPIC, TextStreamOptions, TextWriter};
use crate::{RoomError, Task, warn};

/// What a reply answers.
pub(super) enum Input {
    /// An utterance to transcribe first (16 kHz mono), with where the
    /// user's transcription goes.
    Audio {
        samples: Vec<i16>,
        transcription: UserTranscription,
    },
    /// Text already known: typed chat, or a streamed transcript.
    Text(String),
}

/// Where a user's transcript is published: as whom, of which track, in
/// which segment.
#[derive(Clone)]
pub(super) struct UserTranscription {
    pub(super) user: String,
    pub(super) track: Option<String>,
    pub(super) segment: String,
}

impl UserTranscription {
    /// One stream holding `text`, final or not.
    pub(super) fn publish(&self, text: &str, is_final: bool) {
        let mut options = TextStreamOptions::new(TRANSCRIPTION_TOPIC)
            .sender(&self.user)
            .attribute(SEGMENT_ID, &self.segment)
            .attribute(TRANSCRIPTION_FINAL, if is_final { "true" } else { "false" });
        if let Some(track) = &self.track {
            options = options.attribute(TRANSCRIBED_TRACK_ID, track);
        }
        let written = streams::open_text(options).and_then(|writer| {
            writer.write(text)?;
            writer.close(std::iter::empty::<(String, String)>())
        });
        if let Err(err) = unless_closed(written) {
            warn!("publishing the user's transcription: {err}");
        }
    }
}

/// What a reply in progress shares with the loop, which may cancel it.
#[derive(Default)]
pub(super) struct ReplyShared {
    /// The user's words were transcribed (the utterance is not needed
    /// again).
    pub(super) heard: Cell<bool>,
    /// What the agent has spoken of the reply so far.
    pub(super) spoken: RefCell<String>,
    /// The agent's transcription of the reply, once it speaks.
    pub(super) writer: RefCell<Option<TextWriter>>,
}

/// A reply in progress.
pub(super) struct Reply {
    pub(super) task: Task<()>,
    pub(super) shared: Rc<ReplyShared>,
    /// The utterance it answers, kept until it was heard.
    pub(super) utterance: Vec<i16>,
}

/// What a reply's task needs.
#[derive(Clone)]
pub(super) struct Voice {
    pub(super) stt: Rc<dyn Stt>,
    pub(super) llm: Rc<dyn Llm>,
    pub(super) tts: Rc<dyn Tts>,
    pub(super) history: Rc<RefCell<History>>,
    pub(super) state: Rc<StatePublisher>,
    pub(super) player: Rc<Player>,
    /// The agent's published track, which its transcriptions name.
    pub(super) track: Option<String>,
}

/// One reply: transcribe if needed, then think and speak.
pub(super) async fn reply(voice: Voice, input: Input, shared: Rc<ReplyShared>) {
    let text = match input {
        Input::Text(text) => text,
        Input::Audio {
            samples,
            transcription,
        } => match voice.stt.transcribe(&samples, INPUT_RATE).await {
            Ok(text) if !text.is_empty() => {
                transcription.publish(&text, true);
                text
            }
            Ok(_) => {
                voice.state.set(AgentState::Listening);
                return;
            }
            Err(err) => {
                warn!("speech-to-text: {err}");
                voice.state.set(AgentState::Listening);
                return;
            }
        },
    };
    shared.heard.set(true);
    voice.history.borrow_mut().push(Role::User, text);
    let messages = voice.history.borrow().messages();
    match speak(&voice, &messages, &shared).await {
        Ok(()) | Err(VoiceError::Room(RoomError::Closed)) => {}
        Err(err) => warn!("reply: {err}"),
    }
    if let Some(writer) = shared.writer.take() {
        close_writer(writer, &[(TRANSCRIPTION_FINAL, "true")]);
    }
    let spoken = shared.spoken.take();
    if !spoken.is_empty() {
        voice.history.borrow_mut().push(Role::Assistant, spoken);
    }
    voice.player.drained().await;
    voice.state.set(AgentState::Listening);
}

/// What a reply waits on while it speaks.
enum Step {
    Delta(Option<Result<String, VoiceError>>),
    Audio(Option<Result<Vec<i16>, VoiceError>>),
}

/// Stream the LLM's answer to `messages` into speech, sentence by
/// sentence, reading the LLM while a sentence plays.
async fn speak(
    voice: &Voice,
    messages: &[ChatMessage],
    shared: &ReplyShared,
) -> Result<(), VoiceError> {
    let mut deltas = voice.llm.chat(messages).await?;
    let mut sentences = Sentences::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut llm_done = false;
    // The sentence being spoken: its audio, its text, whether shown yet.
    let mut current: Option<(AudioStream<'_>, String, bool)> = None;
    loop {
        if current.is_none() {
            match queue.pop_front() {
                Some(sentence) => match voice.tts.synthesize(&sentence).await {
                    Ok(audio) => current = Some((audio, sentence, false)),
                    Err(err) => {
                        warn!("text-to-speech: {err}");
                        continue;
                    }
                },
                None if llm_done => return Ok(()),
                None => {}
            }
        }
        let step = match current.as_mut() {
            None => Step::Delta(deltas.next().await),
            Some((audio, _, _)) if llm_done => Step::Audio(audio.next().await),
            Some((audio, _, _)) => {
                future::or(async { Step::Delta(deltas.next().await) }, async {
                    Step::Audio(audio.next().await)
                })
                .await
            }
        };
        match step {
            Step::Delta(Some(Ok(delta))) => queue.extend(sentences.push(&delta)),
            Step::Delta(end) => {
                if let Some(Err(err)) = end {
                    warn!("language model: {err}");
                }
                llm_done = true;
                queue.extend(sentences.finish());
            }
            Step::Audio(Some(Ok(samples))) => {
                if let Some((_, sentence, shown)) = current.as_mut().filter(|c| !c.2) {
                    *shown = true;
                    voice.state.set(AgentState::Speaking);
                    show(voice, shared, sentence)?;
                }
                voice.player.write(&samples).await?;
            }
            Step::Audio(end) => {
                if let Some(Err(err)) = end {
                    warn!("text-to-speech: {err}");
                }
                current = None;
            }
        }
    }
}

/// Add `sentence` to the agent's transcription as it starts playing.
fn show(voice: &Voice, shared: &ReplyShared, sentence: &str) -> Result<(), RoomError> {
    let mut writer = shared.writer.borrow_mut();
    if writer.is_none() {
        let mut options = TextStreamOptions::new(TRANSCRIPTION_TOPIC)
            .attribute(SEGMENT_ID, &segment_id())
            .attribute(TRANSCRIPTION_FINAL, "false");
        if let Some(track) = &voice.track {
            options = options.attribute(TRANSCRIBED_TRACK_ID, track);
        }
        *writer = Some(streams::open_text(options)?);
    }
    let mut spoken = shared.spoken.borrow_mut();
    let chunk = if spoken.is_empty() {
        sentence.to_owned()
    } else {
        format!(" {sentence}")
    };
    if let Some(writer) = writer.as_ref() {
        writer.write(&chunk)?;
    }
    spoken.push_str(&chunk);
    Ok(())
}
