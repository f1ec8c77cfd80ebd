//! The voice session: one conversation between a participant and the
//! agent, from the participant's microphone to the agent's voice, with
//! what LiveKit's frontends read along the way.
//!
//! The pipeline: the user's microphone (16 kHz mono) -> [`Vad`] -> end of
//! turn ([`TurnDetector`]) -> speech-to-text -> the LLM, streamed ->
//! text-to-speech sentence by sentence as the LLM's deltas arrive (so the
//! first audio does not wait for the whole answer) -> the agent's track
//! (mono at the TTS provider's rate, 24 kHz for both built-in providers).
//! Typed chat (`lk.chat`) is a user turn too.
//!
//! What the frontend sees, as livekit-agents' `room_io` publishes it:
//! - the `lk.agent.state` attribute: `initializing` -> `listening` ->
//!   `thinking` (end of turn) -> `speaking` (first audio) -> `listening`
//!   (the reply played, or was interrupted);
//! - transcriptions on `lk.transcription`: the user's, sent as the user
//!   (`sender`), with `lk.transcribed_track_id` = the user's microphone
//!   track and one `lk.segment_id` per utterance: one stream per interim
//!   transcript (`lk.transcription_final` = `false`), then one final
//!   (`true`); the agent's, one stream per reply written sentence by
//!   sentence as each starts playing, naming the agent's own track, closed
//!   with `lk.transcription_final` = `true`.
//!
//! Barge-in: speech starting while a reply is in progress (thinking or
//! speaking) clears the agent's queued audio at once (`audio.clear`),
//! drops the reply's LLM and TTS streams (its task is cancelled), closes
//! its transcription as final, and keeps what was already spoken in the
//! history. Its delay is the VAD's onset window ([`VadConfig::min_speech`],
//! 50 ms by default) plus one frame. Audio of an utterance whose
//! transcript the cancelled reply had not yet got is kept and joins the
//! new utterance, so nothing the user said is lost.
//!
//! `lk.agent.pre-connect-audio-buffer` byte streams (the audio a client
//! recorded before the agent joined; attributes `sampleRate`, `channels`;
//! raw s16le) from the user are converted to 16 kHz mono and fed to the
//! pipeline as the user's speech, ahead of whatever live audio follows.
//!
//! Invariants: one task reads the room (the session's loop); each reply is
//! a task of its own, so the loop keeps hearing the user while the agent
//! speaks; a cancelled reply's writer is closed by the loop (final), the
//! history is bounded ([`History`]) and so is an utterance
//! ([`MAX_UTTERANCE`]).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;

use super::history::{DEFAULT_MAX_MESSAGES, History, Role};
use super::pcm::{S16Decoder, resample, to_mono};
use super::player::Player;
use super::provider::{Llm, LocalBoxFuture, Stt, SttEvent, SttStream, Tts, VoiceError};
use super::reply::{Input, Reply, ReplyShared, UserTranscription, Voice, reply};
use super::turn::{TurnConfig, TurnDetector};
use super::vad::{Vad, VadConfig, VadEvent};
use crate::streams::{self, ByteStream, PRE_CONNECT_AUDIO_TOPIC, TextWriter};
use crate::{
    AudioFormat, CHAT_TOPIC, Event, JobContext, ParticipantKind, Room, RoomError, RoomEvent,
    TrackKind, spawn, warn,
};

/// The participant attribute LiveKit's frontends read the agent's state
/// from.
pub const STATE_ATTRIBUTE: &str = "lk.agent.state";
/// The stream attribute naming a transcription's segment.
pub const SEGMENT_ID: &str = "lk.segment_id";
/// The stream attribute naming the track a transcription is of.
pub const TRANSCRIBED_TRACK_ID: &str = "lk.transcribed_track_id";
/// The stream attribute saying whether a transcription is final.
pub const TRANSCRIPTION_FINAL: &str = "lk.transcription_final";

/// The name of the agent's published track.
pub const TRACK_NAME: &str = "agent-voice";

/// The rate the user's audio is heard at: 16 kHz, what speech models take.
pub const INPUT_RATE: u32 = 16_000;

/// Audio kept from before speech starts and sent with the utterance: the
/// VAD reports speech [`VadConfig::min_speech`] after it began and the
/// first syllable's attack is quieter than the threshold; 300 ms covers
/// both.
const PRE_ROLL: Duration = Duration::from_millis(300);

/// The longest utterance: 60 s (1.9 MB at 16 kHz), past which the turn is
/// ended as if the user paused, so that a stuck-open microphone neither
/// grows the guest's memory nor makes an upload over the providers' size
/// limits (OpenAI takes 25 MB).
pub const MAX_UTTERANCE: Duration = Duration::from_secs(60);

/// What the agent is doing, as `lk.agent.state` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// Setting up.
    Initializing,
    /// Waiting for the user.
    Listening,
    /// The user's turn ended; the reply is being prepared.
    Thinking,
    /// The reply is playing.
    Speaking,
}

impl AgentState {
    /// The attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Initializing => "initializing",
            AgentState::Listening => "listening",
            AgentState::Thinking => "thinking",
            AgentState::Speaking => "speaking",
        }
    }
}

/// Builds a [`VoiceSession`]; see [`VoiceSession::builder`].
#[must_use = "a builder does nothing until `build`"]
pub struct VoiceSessionBuilder {
    stt: Option<Rc<dyn Stt>>,
    llm: Option<Rc<dyn Llm>>,
    tts: Option<Rc<dyn Tts>>,
    instructions: String,
    vad: VadConfig,
    turn: TurnConfig,
    max_messages: usize,
}

impl VoiceSessionBuilder {
    /// The speech-to-text provider (required).
    pub fn stt(mut self, stt: impl Stt + 'static) -> Self {
        self.stt = Some(Rc::new(stt));
        self
    }

    /// The language model (required).
    pub fn llm(mut self, llm: impl Llm + 'static) -> Self {
        self.llm = Some(Rc::new(llm));
        self
    }

    /// The text-to-speech provider (required).
    pub fn tts(mut self, tts: impl Tts + 'static) -> Self {
        self.tts = Some(Rc::new(tts));
        self
    }

    /// The instructions, sent as the system message (default: none).
    pub fn instructions(mut self, instructions: &str) -> Self {
        instructions.clone_into(&mut self.instructions);
        self
    }

    /// How speech is detected (default: [`VadConfig::default`]).
    pub fn vad(mut self, vad: VadConfig) -> Self {
        self.vad = vad;
        self
    }

    /// When a turn ends (default: [`TurnConfig::default`]).
    pub fn turn(mut self, turn: TurnConfig) -> Self {
        self.turn = turn;
        self
    }

    /// The most turns the history keeps (default:
    /// [`DEFAULT_MAX_MESSAGES`]).
    pub fn max_messages(mut self, max: usize) -> Self {
        self.max_messages = max;
        self
    }

    /// The session, or which provider is missing.
    pub fn build(self) -> Result<VoiceSession, String> {
        Ok(VoiceSession {
            stt: self
                .stt
                .ok_or("a voice session needs a speech-to-text provider")?,
            llm: self.llm.ok_or("a voice session needs a language model")?,
            tts: self
                .tts
                .ok_or("a voice session needs a text-to-speech provider")?,
            history: Rc::new(RefCell::new(History::new(
                &self.instructions,
                self.max_messages,
            ))),
            vad: self.vad,
            turn: self.turn,
        })
    }
}

/// A voice conversation with one participant; [`run`](Self::run) runs it
/// for the job's life.
///
/// ```no_run
/// use agent_host_sdk::voice::{OpenAiLlm, OpenAiStt, OpenAiTts, VoiceSession};
/// use agent_host_sdk::{AsyncAgent, JobContext};
///
/// struct Voice;
///
/// impl AsyncAgent for Voice {
///     async fn run(ctx: JobContext) -> Result<(), String> {
///         let base = "https://api.openai.com/v1";
///         VoiceSession::builder()
///             .stt(OpenAiStt::new(base, "whisper-1"))
///             .llm(OpenAiLlm::new(base, "gpt-4o-mini"))
///             .tts(OpenAiTts::new(base, "tts-1", "alloy"))
///             .instructions("You are a helpful voice assistant. Be brief.")
///             .build()?
///             .run(ctx)
///             .await
///     }
/// }
///
/// agent_host_sdk::export_agent!(async Voice);
/// ```
pub struct VoiceSession {
    stt: Rc<dyn Stt>,
    llm: Rc<dyn Llm>,
    tts: Rc<dyn Tts>,
    history: Rc<RefCell<History>>,
    vad: VadConfig,
    turn: TurnConfig,
}

impl VoiceSession {
    /// A session to put together: providers, instructions, tuning.
    pub fn builder() -> VoiceSessionBuilder {
        VoiceSessionBuilder {
            stt: None,
            llm: None,
            tts: None,
            instructions: String::new(),
            vad: VadConfig::default(),
            turn: TurnConfig::default(),
            max_messages: DEFAULT_MAX_MESSAGES,
        }
    }

    /// Run the conversation until the room closes: publish the agent's
    /// track, listen to the job's participant (or the first participant
    /// to join) and answer. A provider's failure is logged and costs that
    /// turn only; a room action that fails for another reason than the
    /// session ending ends the job with it.
    pub async fn run(self, ctx: JobContext) -> Result<(), String> {
        let room = ctx.room();
        let state = Rc::new(StatePublisher::new(room));
        state.set(AgentState::Initializing);
        let audio = ctx.audio();
        let format = AudioFormat {
            sample_rate: self.tts.sample_rate(),
            channels: 1,
        };
        unless_closed(audio.publish(TRACK_NAME, format))?;
        if let Err(err) = streams::accept_bytes(PRE_CONNECT_AUDIO_TOPIC) {
            warn!("no pre-connect audio: {err}");
        }
        let info = ctx.info();
        // Asked once: the future is dropped unpolled, nothing is opened.
        let streaming = self.stt.stream(INPUT_RATE).is_some();
        let mut conversation = Conversation {
            voice: Voice {
                stt: self.stt,
                llm: self.llm,
                tts: self.tts,
                history: self.history,
                state: state.clone(),
                player: Rc::new(Player::new(audio, format.sample_rate)),
                track: audio.published_track().map(|track| track.sid),
            },
            room,
            audio,
            agent: info.identity,
            streaming,
            user: None,
            user_track: None,
            vad: Vad::new(self.vad, INPUT_RATE),
            turn_config: self.turn,
            turn: TurnDetector::new(self.turn),
            pre_roll: VecDeque::new(),
            utterance: Vec::new(),
            segment: String::new(),
            reply: None,
            listen: Listening::default(),
        };
        let user = info
            .participant
            .or_else(|| room.participants().into_iter().find(|p| is_user(p.kind)));
        if let Some(user) = user {
            conversation.adopt(&user.identity)?;
        }
        state.set(AgentState::Listening);
        let result = conversation.run().await;
        conversation.interrupt();
        result
    }
}

/// Whether a participant of `kind` is someone to talk to.
fn is_user(kind: ParticipantKind) -> bool {
    matches!(kind, ParticipantKind::Standard | ParticipantKind::Sip)
}

/// A room action's error, unless it only says the session ended (which
/// the loop learns from the room's `closed` event).
pub(super) fn unless_closed(result: Result<(), RoomError>) -> Result<(), RoomError> {
    match result {
        Err(RoomError::Closed) => Ok(()),
        result => result,
    }
}

/// Sets `lk.agent.state`, once per change.
pub(super) struct StatePublisher {
    room: Room,
    current: Cell<Option<AgentState>>,
}

impl StatePublisher {
    fn new(room: Room) -> Self {
        StatePublisher {
            room,
            current: Cell::new(None),
        }
    }

    pub(super) fn set(&self, state: AgentState) {
        if self.current.replace(Some(state)) == Some(state) {
            return;
        }
        if let Err(err) = unless_closed(
            self.room
                .set_attributes([(STATE_ATTRIBUTE, state.as_str())]),
        ) {
            warn!("setting {STATE_ATTRIBUTE}: {err}");
        }
    }
}

/// A random segment id, `SG_` and 12 hex digits, as livekit-agents'.
pub(super) fn segment_id() -> String {
    format!(
        "SG_{:012x}",
        wasip2::random::random::get_random_u64() & 0xffff_ffff_ffff
    )
}

/// Close `writer` with `attributes`, logging a failure other than the
/// session's end.
pub(super) fn close_writer(writer: TextWriter, attributes: &[(&str, &str)]) {
    if let Err(err) = unless_closed(writer.close(attributes.iter().copied())) {
        warn!("closing a transcription: {err}");
    }
}

/// Streaming speech-to-text, when the provider streams.
#[derive(Default)]
struct Listening {
    /// The socket being opened.
    connecting: Option<LocalBoxFuture<'static, Result<Box<dyn SttStream>, VoiceError>>>,
    /// The open recognition.
    stream: Option<Box<dyn SttStream>>,
    /// The turn ended: ask for the final transcript (once open).
    finalize: bool,
    /// Where the utterance being recognized is published.
    transcription: Option<UserTranscription>,
}

/// What the loop waits on.
enum Next {
    Event(Event),
    Connected(Result<Box<dyn SttStream>, VoiceError>),
    Stt(Option<Result<SttEvent, VoiceError>>),
}

/// The loop's state.
struct Conversation {
    voice: Voice,
    room: Room,
    audio: crate::Audio,
    /// The agent's own identity.
    agent: String,
    /// Whether the speech-to-text provider streams.
    streaming: bool,
    /// Whom the agent listens to.
    user: Option<String>,
    /// The user's microphone track, once published.
    user_track: Option<String>,
    vad: Vad,
    turn_config: TurnConfig,
    turn: TurnDetector,
    /// The last [`PRE_ROLL`] of audio while no turn is in progress.
    pre_roll: VecDeque<i16>,
    /// The current turn's audio: all of it for batch speech-to-text, what
    /// waits for the socket to open for streaming.
    utterance: Vec<i16>,
    /// The current utterance's segment id.
    segment: String,
    reply: Option<Reply>,
    listen: Listening,
}

impl Conversation {
    async fn run(&mut self) -> Result<(), String> {
        loop {
            let room = self.room;
            let listen = &mut self.listen;
            let next = future::or(async { Next::Event(room.recv_any().await) }, async {
                match listen.connecting.as_mut() {
                    Some(connecting) => Next::Connected(connecting.await),
                    None => match &listen.stream {
                        Some(stream) => Next::Stt(stream.recv().await),
                        None => future::pending().await,
                    },
                }
            })
            .await;
            // Byte streams are taken as events arrive (a live microphone
            // sends 100 frames a second), before the event: a client's
            // pre-connect audio is heard ahead of the live frames that
            // follow it. Not awaited beside the room: the host's
            // `streams.subscribe` and `events.subscribe` pollables in one
            // `poll` can keep each other from becoming ready.
            while let Some(bytes) = streams::next_bytes() {
                self.bytes(bytes).await;
            }
            match next {
                Next::Event(Event::Room(RoomEvent::Closed(_))) => return Ok(()),
                Next::Event(event) => self.event(event).await?,
                Next::Connected(result) => {
                    self.listen.connecting = None;
                    self.connected(result).await;
                }
                Next::Stt(event) => self.transcript(event),
            }
        }
    }

    /// Listen to `identity` from now on.
    fn adopt(&mut self, identity: &str) -> Result<(), RoomError> {
        unless_closed(self.audio.subscribe(identity, AudioFormat::MONO_16K))?;
        self.user = Some(identity.to_owned());
        self.user_track = None;
        Ok(())
    }

    fn is_user(&self, identity: &str) -> bool {
        self.user.as_deref() == Some(identity)
    }

    async fn event(&mut self, event: Event) -> Result<(), RoomError> {
        match event {
            Event::Audio(frame) => {
                if self.is_user(&frame.participant) {
                    self.hear(&frame.samples).await;
                }
            }
            Event::TrackPublished(track) => {
                if track.kind == TrackKind::Audio && self.is_user(&track.participant) {
                    self.user_track = Some(track.sid);
                }
            }
            Event::TrackUnpublished(track) => {
                if self.user_track.as_ref() == Some(&track.sid) {
                    self.user_track = None;
                }
            }
            Event::Room(RoomEvent::ParticipantJoined(participant)) => {
                if self.user.is_none() && is_user(participant.kind) {
                    self.adopt(&participant.identity)?;
                }
            }
            Event::Room(RoomEvent::ParticipantLeft(participant)) => {
                if self.is_user(&participant.identity) {
                    self.interrupt();
                    self.user = None;
                    self.user_track = None;
                }
            }
            Event::Room(RoomEvent::TextReceived(message)) => {
                let text = message.text.trim();
                if message.topic == CHAT_TOPIC && message.sender != self.agent && !text.is_empty() {
                    self.start_reply(Input::Text(text.to_owned()));
                }
            }
            Event::Room(_) => {}
        }
        Ok(())
    }

    /// A byte stream: the user's pre-connect audio, heard as speech.
    async fn bytes(&mut self, stream: ByteStream) {
        if stream.topic != PRE_CONNECT_AUDIO_TOPIC || !self.is_user(&stream.sender) {
            return;
        }
        // livekit-agents' client sends 48 kHz mono unless it says.
        let rate = stream
            .attribute("sampleRate")
            .and_then(|r| r.parse().ok())
            .unwrap_or(48_000);
        let channels = stream
            .attribute("channels")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        if let Some(why) = &stream.incomplete {
            warn!("pre-connect audio incomplete ({why}); using what arrived");
        }
        let samples = S16Decoder::new().feed(&stream.bytes);
        let samples = resample(&to_mono(&samples, channels), rate, INPUT_RATE);
        self.hear(&samples).await;
    }

    /// The user's next samples (16 kHz mono).
    async fn hear(&mut self, samples: &[i16]) {
        let was_in_turn = self.turn.in_turn();
        let mut started = false;
        for event in self.vad.push(samples) {
            self.turn.event(event);
            started |= matches!(event, VadEvent::SpeechStarted { .. });
        }
        if started {
            // Barge-in: whatever the agent was doing for the last turn.
            let unheard = self.interrupt();
            if !was_in_turn {
                self.speech_started(unheard, samples).await;
            }
        }
        if was_in_turn {
            self.record(samples).await;
        } else if !started {
            self.pre_roll.extend(samples);
            let keep = INPUT_RATE as usize * PRE_ROLL.as_millis() as usize / 1_000;
            let excess = self.pre_roll.len().saturating_sub(keep);
            self.pre_roll.drain(..excess);
        }
        let too_long =
            self.utterance.len() > INPUT_RATE as usize * MAX_UTTERANCE.as_secs() as usize;
        if self.turn.ended(self.vad.elapsed()) || too_long {
            self.turn = TurnDetector::new(self.turn_config);
            self.end_of_turn().await;
        }
    }

    /// Speech began: a new utterance, from the pre-roll on (after the
    /// audio of an interrupted turn that was never transcribed).
    async fn speech_started(&mut self, unheard: Option<Vec<i16>>, samples: &[i16]) {
        let mut audio = unheard.unwrap_or_default();
        audio.extend(self.pre_roll.drain(..));
        audio.extend_from_slice(samples);
        if !self.streaming {
            self.segment = segment_id();
            self.utterance = audio;
            return;
        }
        self.listen_to_utterance();
        self.utterance = audio;
        self.flush_to_stream().await;
    }

    /// Streaming: a segment for the utterance and a socket to recognize
    /// it, unless the utterance has them already.
    fn listen_to_utterance(&mut self) {
        if self.listen.transcription.is_none() {
            self.listen.transcription = self.user.clone().map(|user| UserTranscription {
                user,
                track: self.user_track.clone(),
                segment: segment_id(),
            });
        }
        if self.listen.stream.is_none() && self.listen.connecting.is_none() {
            let stt = self.voice.stt.clone();
            self.listen.connecting = Some(Box::pin(async move {
                match stt.stream(INPUT_RATE) {
                    Some(connecting) => connecting.await,
                    None => Err(VoiceError::Protocol(
                        "the provider stopped streaming".into(),
                    )),
                }
            }));
        }
    }

    /// Audio of the turn in progress.
    async fn record(&mut self, samples: &[i16]) {
        self.utterance.extend_from_slice(samples);
        if self.streaming {
            self.flush_to_stream().await;
        }
    }

    /// Send what the open stream has not had yet.
    async fn flush_to_stream(&mut self) {
        let Some(stream) = &self.listen.stream else {
            return;
        };
        if self.utterance.is_empty() {
            return;
        }
        let audio = std::mem::take(&mut self.utterance);
        if let Err(err) = stream.send(&audio).await {
            warn!("speech-to-text: {err}");
            self.listen.stream = None;
        }
    }

    /// The user's turn ended.
    async fn end_of_turn(&mut self) {
        if !self.streaming {
            let samples = std::mem::take(&mut self.utterance);
            let Some(user) = self.user.clone() else {
                return;
            };
            let transcription = UserTranscription {
                user,
                track: self.user_track.clone(),
                segment: std::mem::take(&mut self.segment),
            };
            self.start_reply(Input::Audio {
                samples,
                transcription,
            });
            return;
        }
        self.voice.state.set(AgentState::Thinking);
        self.listen.finalize = true;
        self.finalize().await;
    }

    /// Ask the open stream for the final transcript, if the turn ended.
    async fn finalize(&mut self) {
        if !self.listen.finalize {
            return;
        }
        let Some(stream) = &self.listen.stream else {
            return;
        };
        if let Err(err) = stream.finalize().await {
            warn!("speech-to-text: {err}");
            self.listen = Listening::default();
            self.idle();
        }
    }

    async fn connected(&mut self, result: Result<Box<dyn SttStream>, VoiceError>) {
        match result {
            Ok(stream) => {
                self.listen.stream = Some(stream);
                self.flush_to_stream().await;
                self.finalize().await;
            }
            Err(err) => {
                warn!("speech-to-text: {err}");
                self.utterance.clear();
                self.listen = Listening::default();
                self.idle();
            }
        }
    }

    /// A streamed transcript.
    fn transcript(&mut self, event: Option<Result<SttEvent, VoiceError>>) {
        match event {
            Some(Ok(SttEvent::Interim(text))) => {
                if let Some(transcription) = &self.listen.transcription {
                    transcription.publish(&text, false);
                }
            }
            Some(Ok(SttEvent::Final(text))) => {
                // One socket per utterance: dropping it closes it.
                let transcription = std::mem::take(&mut self.listen).transcription;
                if text.is_empty() {
                    self.idle();
                    return;
                }
                if let Some(transcription) = transcription {
                    transcription.publish(&text, true);
                }
                self.start_reply(Input::Text(text));
                // The user went on speaking after the turn ended: that is
                // the next utterance, on a socket of its own.
                if self.turn.in_turn() {
                    self.listen_to_utterance();
                }
            }
            Some(Err(err)) => {
                warn!("speech-to-text: {err}");
                self.listen = Listening::default();
                self.idle();
            }
            None => {
                self.listen = Listening::default();
                self.idle();
            }
        }
    }

    /// Back to listening, unless a reply is in progress.
    fn idle(&self) {
        if self.reply.as_ref().is_none_or(|r| r.task.is_finished()) {
            self.voice.state.set(AgentState::Listening);
        }
    }

    /// Answer `input`, instead of the reply in progress if there is one.
    fn start_reply(&mut self, input: Input) {
        self.interrupt();
        self.voice.state.set(AgentState::Thinking);
        let shared = Rc::new(ReplyShared::default());
        let utterance = match &input {
            Input::Audio { samples, .. } => samples.clone(),
            Input::Text(_) => Vec::new(),
        };
        let task = spawn(reply(self.voice.clone(), input, shared.clone()));
        self.reply = Some(Reply {
            task,
            shared,
            utterance,
        });
    }

    /// Stop the reply in progress, if any (barge-in): its audio is cleared
    /// and its streams dropped, what it spoke stays in the history. Returns
    /// the utterance it answered if it had not been transcribed yet.
    fn interrupt(&mut self) -> Option<Vec<i16>> {
        let reply = self.reply.take()?;
        if reply.task.is_finished() {
            return None;
        }
        drop(reply.task);
        if let Err(err) = unless_closed(self.voice.player.clear()) {
            warn!("clearing the agent's audio: {err}");
        }
        if let Some(writer) = reply.shared.writer.take() {
            close_writer(writer, &[(TRANSCRIPTION_FINAL, "true")]);
        }
        let spoken = reply.shared.spoken.take();
        if !spoken.is_empty() {
            self.voice
                .history
                .borrow_mut()
                .push(Role::Assistant, spoken);
        }
        self.voice.state.set(AgentState::Listening);
        (!reply.shared.heard.get()).then_some(reply.utterance)
    }
}
