//! Bounded text: every string a guest influences is cut before it reaches a
//! worker message, a log line or the room.
//!
//! Policy: a guest decides what its strings say, never how long the host's
//! messages about it are. A failure reason is at most
//! [`MAX_FAILURE_REASON`], a log line at most
//! [`MAX_LOG_LINE`], a guest-supplied value
//! inside a host log line (an identity, a topic, a host name) at most
//! [`MAX_LOG_FIELD`], a function name from a guest's name section at most
//! [`MAX_FRAME_NAME`].
//!
//! Invariants, for any input and any `max` of at least [`MIN_MAX`]:
//! - the result is at most `max` bytes, and it is valid UTF-8 cut at a
//!   character boundary;
//! - a text that fits is returned unchanged; one that does not ends with a
//!   visible marker, `… [truncated N bytes]` (or `… [truncated]` where the
//!   full length is not known, because formatting stopped at the cap);
//! - formatting a value stops at the cap: a guest name of many megabytes
//!   costs the host `max` bytes, not its size;
//! - guest text in a host log line ([`log_line`], [`log_field`], and the
//!   guest's stdout and stderr) has its control characters written out
//!   (`\n`, `\r`, `\u{1b}`, ...), so a guest can neither start a line of its
//!   own in the host's text log (forging an entry of the host or of another
//!   job) nor send escape sequences to an operator's terminal.

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};

pub use crate::config::job::{MAX_FAILURE_REASON, MAX_FRAME_NAME, MAX_LOG_FIELD, MAX_LOG_LINE};

/// Smallest `max` the invariants hold for: room for the longest marker.
pub const MIN_MAX: usize = 64;

/// `text` cut to `max` bytes, with a marker saying how much was left out.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    Cow::Owned(finish(text, Some(text.len()), max))
}

/// An owned `text` cut to `max` bytes, as [`cut`].
pub fn cut_owned(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    finish(&text, Some(text.len()), max)
}

/// `text`, the first bytes of a text that had `total` bytes (the rest was
/// dropped before it reached the host), cut to `max` bytes; the marker
/// counts every byte left out.
pub fn cut_prefix(text: &str, total: usize, max: usize) -> String {
    let total = total.max(text.len());
    if total <= max {
        return text.to_owned();
    }
    finish(text, Some(total), max)
}

/// A failure reason: `text` cut to [`MAX_FAILURE_REASON`].
pub fn reason(text: String) -> String {
    cut_owned(text, MAX_FAILURE_REASON)
}

/// A log line: `text` cut to [`MAX_LOG_LINE`].
pub fn log_line(text: &str) -> Cow<'_, str> {
    visible_cut(text, MAX_LOG_LINE)
}

/// A guest value inside a host log line: `text` cut to [`MAX_LOG_FIELD`].
pub fn log_field(text: &str) -> Cow<'_, str> {
    visible_cut(text, MAX_LOG_FIELD)
}

/// `text` with every control character written out as Rust escapes it
/// (`\n`, `\t`, `\u{1b}`); borrowed when it has none.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`visible`], then [`cut`] to `max`.
fn visible_cut(text: &str, max: usize) -> Cow<'_, str> {
    match visible(text) {
        Cow::Borrowed(text) => cut(text, max),
        Cow::Owned(text) => Cow::Owned(cut_owned(text, max)),
    }
}

/// `value` formatted, stopping at `max` bytes (with the marker when it
/// did not fit). Formatting stops there: the rest is never produced.
pub fn display(value: impl Display, max: usize) -> String {
    let mut capped = Capped {
        out: String::new(),
        max,
        full: false,
    };
    // `Capped` fails the write once full, which ends the formatting early;
    // that error is the cap, not a failure.
    let _ = write!(capped, "{value}");
    if capped.full {
        finish(&capped.out, None, max)
    } else {
        capped.out
    }
}

/// Collects up to `max` bytes of formatted text (plus one character, so a
/// cut is detected), then refuses more.
struct Capped {
    out: String,
    max: usize,
    full: bool,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.max.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.push_str(s);
            return Ok(());
        }
        self.out.push_str(&s[..s.floor_char_boundary(room)]);
        self.full = true;
        Err(fmt::Error)
    }
}

/// Cuts `text` so that it and its marker fit in `max` bytes. `total` is
/// the full length, when known.
fn finish(text: &str, total: Option<usize>, max: usize) -> String {
    let marker = |dropped: Option<usize>| match dropped {
        Some(n) => format!("… [truncated {n} bytes]"),
        None => "… [truncated]".to_owned(),
    };
    debug_assert!(
        max >= MIN_MAX,
        "a cap of {max} bytes has no room for the marker"
    );
    // The marker for the most bytes that could be left out is the longest.
    let reserve = marker(total).len();
    let keep = text.floor_char_boundary(max.saturating_sub(reserve));
    let mut out = String::with_capacity(max);
    out.push_str(&text[..keep]);
    out.push_str(&marker(total.map(|t| t - keep)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_cannot_start_a_log_line_of_its_own() {
        let forged = "ok\n2026-12-01T00:00:00Z  INFO agent_host: job ended job_id=AJ_other";
        let line = log_line(forged);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("ok\\n2026"), "{line}");
        assert_eq!(log_field("bob\r\u{1b}[2J"), "bob\\r\\u{1b}[2J");
        assert!(matches!(
            log_line("plain text"),
            Cow::Borrowed("plain text")
        ));
        // Escapes count against the cap like any other byte.
        let newlines = "\n".repeat(MAX_LOG_LINE);
        let long = log_line(&newlines);
        assert!(long.len() <= MAX_LOG_LINE, "{}", long.len());
        assert!(long.ends_with("bytes]"), "{long}");
    }

    #[test]
    fn short_text_is_unchanged() {
        assert!(matches!(cut("hello", 64), Cow::Borrowed("hello")));
        assert_eq!(cut_owned("hello".into(), 5), "hello");
        assert_eq!(display(42, 64), "42");
        assert_eq!(cut_prefix("abc", 3, 64), "abc");
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let text = "x".repeat(10_000);
        let out = cut(&text, 100);
        assert!(out.len() <= 100, "{}", out.len());
        assert!(out.starts_with("xxxx"));
        let kept = out.find('…').unwrap();
        assert!(
            out.ends_with(&format!("… [truncated {} bytes]", 10_000 - kept)),
            "{out}"
        );
        assert!(reason("y".repeat(1 << 20)).len() <= MAX_FAILURE_REASON);
    }

    #[test]
    fn cuts_at_a_char_boundary() {
        // Three-byte characters: every cut point but one in three is inside one.
        let text = "€".repeat(1000);
        for max in MIN_MAX..200 {
            let out = cut(&text, max);
            assert!(out.len() <= max, "max {max}: {}", out.len());
            assert!(out.contains("[truncated"));
        }
    }

    #[test]
    fn a_prefix_counts_the_bytes_dropped_before_it() {
        let out = cut_prefix(&"a".repeat(100), 5000, 80);
        assert!(out.len() <= 80);
        let kept = out.find('…').unwrap();
        assert!(
            out.ends_with(&format!("[truncated {} bytes]", 5000 - kept)),
            "{out}"
        );
        // Already within the cap, but bytes were dropped: still marked.
        let out = cut_prefix("abc", 5000, 80);
        assert!(out.ends_with("[truncated 4997 bytes]"), "{out}");
    }

    #[test]
    fn display_stops_formatting_at_the_cap() {
        struct Endless;
        impl Display for Endless {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Would run forever if the writer kept accepting.
                loop {
                    f.write_str("é")?;
                }
            }
        }
        let out = display(Endless, 100);
        assert!(out.len() <= 100);
        assert!(
            out.starts_with("éé") && out.ends_with("… [truncated]"),
            "{out}"
        );
    }

    proptest::proptest! {
        /// Whatever the text and cap, the result fits and is marked when cut.
        #[test]
        fn always_within_the_cap(text in "\\PC{0,300}", max in MIN_MAX..256usize) {
            let out = cut(&text, max);
            proptest::prop_assert!(out.len() <= max);
            if text.len() > max {
                proptest::prop_assert!(out.contains("… [truncated"));
            } else {
                proptest::prop_assert_eq!(out.as_ref(), text.as_str());
            }
            let shown = display(&text, max);
            proptest::prop_assert!(shown.len() <= max);
        }
    }
}
