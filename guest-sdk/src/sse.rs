//! Server-sent events: a parser for `text/event-stream`, as the HTML
//! standard's `EventSource` reads it.
//!
//! [`Parser::feed`] takes the body in chunks of any size, split anywhere
//! (inside a line, between `\r` and `\n`, inside a UTF-8 character), and
//! returns the events that chunk completed.
//! [`http::Response::sse`](crate::http::Response::sse) wraps it around a
//! streamed response.
//!
//! Policy, from the standard (§9.2.6 "Interpreting an event stream"):
//! - Lines end at `\r\n`, `\n` or `\r`; one leading byte-order mark is
//!   skipped; lines are decoded as UTF-8 with replacement characters.
//! - A line starting with `:` is a comment and ignored (servers send them
//!   as keep-alives). A line `name: value` sets a field (one space after
//!   the colon is dropped); a line without a colon is a field with an
//!   empty value. Unknown fields are ignored.
//! - `data` lines append to the event's data, joined by `\n`; `event` sets
//!   its type (default `message`); `id` sets the last event id, which
//!   persists across events (an `id` containing NUL is ignored); `retry`
//!   with only ASCII digits sets the reconnection time.
//! - A blank line dispatches the event, unless it has no data (then its
//!   type is reset and nothing is returned). An event not ended by a blank
//!   line when the body ends is dropped.
//!
//! Invariant: this module is plain Rust (no host calls), so its tests run
//! natively with `cargo test -p agent-host-sdk`. What it buffers is the
//! current line and event; the host's response cap bounds both.

use std::time::Duration;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event` field, `message` when the event had none.
    pub event: String,
    /// The `data` lines, joined by `\n`.
    pub data: String,
    /// The last event id seen in the stream up to this event (`id` fields
    /// persist), empty when there was none.
    pub id: String,
}

/// The state of one event stream.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` first in the next one
    /// belongs to it.
    after_cr: bool,
    /// Whether the first line began (the byte-order mark is only skipped
    /// there).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: String,
    retry: Option<Duration>,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next chunk of the body; returns the events it completed,
    /// in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..end]);
            if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => rest = &rest[end + 2..],
                    Some(_) => rest = &rest[end + 1..],
                    None => {
                        self.after_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[end + 1..];
            }
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_ended(&line) {
                events.push(event);
            }
        }
        self.line.extend_from_slice(rest);
        events
    }

    /// The reconnection time the stream asked for (`retry`), if it did.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The last event id the stream set, empty when none.
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    fn line_ended(&mut self, line: &[u8]) -> Option<Event> {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line)
        };
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.last_id),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits only, so parsing fails only on overflow: saturate.
                let ms = value.parse().unwrap_or(u64::MAX);
                self.retry = Some(Duration::from_millis(ms));
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &str) -> Event {
        Event {
            event: "message".into(),
            data: data.into(),
            id: String::new(),
        }
    }

    fn parse(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::new();
        chunks.iter().flat_map(|c| parser.feed(c)).collect()
    }

    #[test]
    fn fields_and_multi_line_data() {
        let events = parse(&[b"event: delta\nid: 7\ndata: one\ndata:two\ndata\n\n"]);
        assert_eq!(
            events,
            [Event {
                event: "delta".into(),
                data: "one\ntwo\n".into(),
                id: "7".into(),
            }]
        );
    }

    #[test]
    fn lf_crlf_and_cr_end_lines_alike() {
        for stream in [
            &b"data: a\n\ndata: b\n\n"[..],
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
        ] {
            assert_eq!(parse(&[stream]), [message("a"), message("b")], "{stream:?}");
        }
    }

    #[test]
    fn chunk_boundaries_anywhere() {
        let stream = "\u{feff}: hi\r\nevent: é\r\ndata: ünï\r\nid: 1\r\n\r\ndata: [DONE]\r\n\r\n";
        let whole = parse(&[stream.as_bytes()]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].event, "é");
        assert_eq!(whole[0].data, "ünï");
        assert_eq!(
            whole[1],
            Event {
                id: "1".into(),
                ..message("[DONE]")
            }
        );
        let bytes = stream.as_bytes();
        // Every split in two, and every byte alone.
        for at in 0..=bytes.len() {
            assert_eq!(parse(&[&bytes[..at], &bytes[at..]]), whole, "split at {at}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse(&single), whole);
    }

    #[test]
    fn comments_blank_events_and_unknown_fields_yield_nothing() {
        assert!(parse(&[b": keep-alive\n\n\nevent: x\n\nfoo: bar\n\n"]).is_empty());
        // The type of an event without data does not leak into the next.
        assert_eq!(parse(&[b"event: x\n\ndata: y\n\n"]), [message("y")]);
    }

    #[test]
    fn one_space_after_the_colon_is_dropped() {
        assert_eq!(
            parse(&[b"data:  two\ndata:none\n\n"]),
            [message(" two\nnone")]
        );
    }

    #[test]
    fn retry_and_last_event_id() {
        let mut parser = Parser::new();
        assert!(
            parser
                .feed(b"retry: 1500\nretry: 2s\nid: a\0b\n\n")
                .is_empty()
        );
        assert_eq!(parser.retry(), Some(Duration::from_millis(1500)));
        assert_eq!(parser.last_event_id(), "", "an id with NUL is ignored");
        let events = parser.feed(b"id: 3\ndata: x\n\ndata: y\n\n");
        assert_eq!(events[0].id, "3");
        assert_eq!(events[1].id, "3", "the id persists");
        parser.feed(b"retry: 99999999999999999999999\n");
        assert_eq!(parser.retry(), Some(Duration::from_millis(u64::MAX)));
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        let mut parser = Parser::new();
        assert!(parser.feed(b"data: half").is_empty());
        assert!(parser.feed(b" more\n").is_empty());
        assert_eq!(parser.feed(b"\n"), [message("half more")]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(parse(&[b"data: \xff!\n\n"]), [message("\u{fffd}!")]);
    }
}
