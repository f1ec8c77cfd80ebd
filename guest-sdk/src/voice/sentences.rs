//! Cut an LLM's streamed text into sentences, so that speech of the first
//! sentence starts while the rest is still being written.
//!
//! A sentence ends at `.`, `!`, `?` or `…` (and the closing quotes or
//! brackets after them) followed by whitespace, or at a line break. A
//! sentence shorter than [`MIN_SENTENCE_CHARS`] is joined to the next, so
//! that "Hi." and "Dr. Who" do not each become a speech request of their
//! own. [`Sentences::finish`] returns what is left when the text ends.
//!
//! Invariant: the concatenation of every sentence returned (with the
//! whitespace between them) is the text pushed; nothing is lost or
//! repeated. Plain Rust, tested natively.

/// Characters a sentence needs before an end mark ends it: livekit-agents'
/// `min_sentence_len` (20), which keeps abbreviations and interjections
/// with their sentence while the first sentence still ends early.
pub const MIN_SENTENCE_CHARS: usize = 20;

/// Streamed text, cut into sentences as it arrives.
#[derive(Debug, Default)]
pub struct Sentences {
    buffer: String,
}

impl Sentences {
    /// An empty splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `delta`; returns the sentences it completed (trimmed,
    /// non-empty).
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buffer.push_str(delta);
        let mut sentences = Vec::new();
        while let Some(end) = self.sentence_end() {
            let rest = self.buffer.split_off(end);
            let sentence = std::mem::replace(&mut self.buffer, rest);
            let sentence = sentence.trim();
            if !sentence.is_empty() {
                sentences.push(sentence.to_owned());
            }
        }
        sentences
    }

    /// The text left when the stream ends, if any.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buffer);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_owned())
    }

    /// The byte offset just past the first sentence of the buffer long
    /// enough to stand alone, if one is complete.
    fn sentence_end(&self) -> Option<usize> {
        let text = &self.buffer;
        let chars = text.char_indices();
        let mut after_mark = false;
        for (i, c) in chars {
            let long_enough = text[..i].trim_start().chars().count() >= MIN_SENTENCE_CHARS;
            if c == '\n' && !text[..i].trim().is_empty() {
                return Some(i + 1);
            }
            if matches!(c, '.' | '!' | '?' | '…') {
                after_mark = true;
                continue;
            }
            if after_mark && matches!(c, '"' | '\'' | ')' | ']' | '”' | '’') {
                continue;
            }
            if after_mark && c.is_whitespace() && long_enough {
                return Some(i);
            }
            after_mark = false;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_as_the_text_arrives() {
        let mut s = Sentences::new();
        assert!(s.push("The weather is sunny").is_empty());
        assert!(s.push(" today.").is_empty(), "no whitespace after it yet");
        assert_eq!(s.push(" Bring"), ["The weather is sunny today."]);
        assert_eq!(s.push(" a hat, please! And"), ["Bring a hat, please!"]);
        assert_eq!(s.finish().as_deref(), Some("And"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn short_sentences_join_the_next() {
        let mut s = Sentences::new();
        assert_eq!(
            s.push("Hi. I am Dr. Who, the doctor. Yes? "),
            ["Hi. I am Dr. Who, the doctor."]
        );
        assert_eq!(s.finish().as_deref(), Some("Yes?"));
    }

    #[test]
    fn quotes_and_line_breaks() {
        let mut s = Sentences::new();
        assert_eq!(
            s.push("She said \"it is raining today.\" Then\nlist:\n"),
            ["She said \"it is raining today.\"", "Then", "list:"]
        );
    }

    #[test]
    fn nothing_is_lost_one_char_at_a_time() {
        let text = "First sentence is here. Second one is here too! Third?";
        let mut s = Sentences::new();
        let mut out: Vec<String> = text.chars().flat_map(|c| s.push(&c.to_string())).collect();
        out.extend(s.finish());
        assert_eq!(out.join(" "), text);
        assert_eq!(out.len(), 3, "{out:?}");
    }
}
