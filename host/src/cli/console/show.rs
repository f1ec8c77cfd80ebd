//! What the agents do, printed for the console user.
//!
//! Chat, data and metadata print one line each. Text streams print as they
//! stream: a line opens with the sender and the stream's kind
//! (`[transcription]` for `lk.transcription`, nothing for `lk.chat`,
//! `[stream TOPIC]` otherwise), each chunk is appended as it comes, and
//! closing the stream ends the line, with `(final)` when the stream says
//! `lk.transcription_final` = `true` (in its header or trailer). Output
//! about something else in the middle ends the open line with `…`; the
//! stream's next chunk starts a new one. `lk.agent.state` changes print as
//! `[state] thinking`. Calls an agent makes on the console user are
//! answered 1400 (the user registers no methods).

use std::collections::HashMap;
use std::io::Write as _;

use agent_host::room::RpcError;
use agent_host::room::rpc_codes::UNSUPPORTED_METHOD;
use agent_host::room::sim::{SimOutput, SimRoom};

const TRANSCRIPTION: &str = "lk.transcription";
const FINAL: &str = "lk.transcription_final";
const STATE: &str = "lk.agent.state";

/// A text stream being printed.
struct Stream {
    /// The line's opening: sender and kind.
    prefix: String,
    /// Whether its header already said final.
    final_: bool,
}

/// Prints outputs, keeping track of the text streams in flight.
pub(super) struct Printer {
    me: String,
    streams: HashMap<String, Stream>,
    /// The stream whose line is open (no newline yet).
    open: Option<String>,
}

fn is_final(attributes: &[(String, String)]) -> bool {
    attributes.iter().any(|(k, v)| k == FINAL && v == "true")
}

impl Printer {
    pub(super) fn new(me: String) -> Self {
        Printer {
            me,
            streams: HashMap::new(),
            open: None,
        }
    }

    fn to(&self, destinations: &[String]) -> String {
        if destinations.is_empty() || destinations.contains(&self.me) {
            String::new()
        } else {
            format!(" (to {})", destinations.join(", "))
        }
    }

    /// Ends the open stream line, if any, with `end`.
    fn end_line(&mut self, end: &str) {
        if self.open.take().is_some() {
            println!("{end}");
        }
    }

    /// A whole line about something other than the open stream.
    fn line(&mut self, text: String) {
        self.end_line(" …");
        println!("{text}");
    }

    /// Prints one output; answers calls made on the user in `room`.
    pub(super) fn print(&mut self, output: &SimOutput, room: &SimRoom) {
        match output {
            SimOutput::Text { from, text } => {
                let to = self.to(&text.destinations);
                self.line(format!("{from}{to}: {}", text.text));
            }
            SimOutput::Data { from, data } => {
                let payload = String::from_utf8(data.payload.clone())
                    .unwrap_or_else(|_| format!("<{} bytes>", data.payload.len()));
                let topic = data
                    .topic
                    .as_deref()
                    .map(|t| format!(" topic={t}"))
                    .unwrap_or_default();
                let to = self.to(&data.destinations);
                self.line(format!("{from}{to} [data{topic}]: {payload}"));
            }
            SimOutput::Metadata { from, metadata } => {
                self.line(format!("{from} [metadata]: {metadata}"));
            }
            SimOutput::Attributes { from, attributes } => {
                let (state, other): (Vec<_>, Vec<_>) =
                    attributes.iter().partition(|(k, _)| k == STATE);
                for (_, value) in state {
                    self.line(format!("{from} [state] {value}"));
                }
                if !other.is_empty() {
                    self.line(format!("{from} [attributes]: {other:?}"));
                }
            }
            SimOutput::AudioPublished { from, name, format } => self.line(format!(
                "{from} [audio]: published track `{name}` ({} Hz, {} ch)",
                format.sample_rate, format.channels
            )),
            SimOutput::TextStreamOpened { from, id, options } => {
                let sender = options.sender.as_deref().unwrap_or(from);
                let kind = match options.topic.as_str() {
                    TRANSCRIPTION => " [transcription]".to_string(),
                    "lk.chat" => String::new(),
                    topic => format!(" [stream {topic}]"),
                };
                let to = self.to(&options.destinations);
                let prefix = format!("{sender}{to}{kind}:");
                let final_ = is_final(&options.attributes);
                self.streams.insert(id.clone(), Stream { prefix, final_ });
            }
            SimOutput::TextStreamChunk { id, text, .. } => {
                let Some(stream) = self.streams.get(id) else {
                    return;
                };
                if self.open.as_ref() != Some(id) {
                    let prefix = stream.prefix.clone();
                    self.end_line(" …");
                    print!("{prefix} ");
                    self.open = Some(id.clone());
                }
                print!("{text}");
                let _ = std::io::stdout().flush();
            }
            SimOutput::TextStreamClosed { id, attributes, .. } => {
                let Some(stream) = self.streams.remove(id) else {
                    return;
                };
                let mark = if stream.final_ || is_final(attributes) {
                    " (final)"
                } else {
                    ""
                };
                if self.open.as_ref() == Some(id) {
                    self.open = None;
                    println!("{mark}");
                } else {
                    // No chunk is still open: the stream's end on its own line.
                    self.line(format!("{} (end){mark}", stream.prefix));
                }
            }
            SimOutput::RpcRequest { from, id, call } => {
                self.line(format!(
                    "{from} [rpc]: calls `{}` on {} with {}",
                    call.method, call.destination, call.payload
                ));
                let unsupported = RpcError {
                    code: UNSUPPORTED_METHOD,
                    message: "the console user has no RPC methods".into(),
                    data: None,
                };
                room.answer_rpc(id, Err(unsupported));
            }
            SimOutput::Audio { .. } | SimOutput::AudioCleared { .. } => {}
            SimOutput::AgentJoined(_) | SimOutput::AgentLeft(_) => {}
        }
    }
}
