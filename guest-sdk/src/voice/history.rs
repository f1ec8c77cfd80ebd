//! The conversation so far, as an LLM reads it: the instructions as the
//! system message, then the user's and the agent's turns.
//!
//! Bounded: past [`History::max_messages`] the oldest turns go (the
//! instructions stay), so a long conversation neither grows the guest's
//! memory nor the requests without end. Plain Rust, tested natively.

use serde::Serialize;

/// Who said a message, as chat completions name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The instructions.
    System,
    /// The participant.
    User,
    /// The agent.
    Assistant,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl ChatMessage {
    /// A message of `role` saying `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
        }
    }
}

/// Messages kept by default: 40, twenty exchanges, which keeps a
/// conversation's thread and a request well under any model's context.
pub const DEFAULT_MAX_MESSAGES: usize = 40;

/// The conversation: instructions and the latest turns.
#[derive(Debug, Clone)]
pub struct History {
    instructions: Option<ChatMessage>,
    turns: std::collections::VecDeque<ChatMessage>,
    max: usize,
}

impl History {
    /// A conversation with `instructions` as its system message (none
    /// when empty), keeping at most `max_messages` turns besides it.
    pub fn new(instructions: &str, max_messages: usize) -> Self {
        History {
            instructions: (!instructions.is_empty())
                .then(|| ChatMessage::new(Role::System, instructions)),
            turns: std::collections::VecDeque::new(),
            max: max_messages.max(1),
        }
    }

    /// The most turns kept.
    pub fn max_messages(&self) -> usize {
        self.max
    }

    /// Add a turn, forgetting the oldest past the bound.
    pub fn push(&mut self, role: Role, content: impl Into<String>) {
        self.turns.push_back(ChatMessage::new(role, content));
        while self.turns.len() > self.max {
            self.turns.pop_front();
        }
    }

    /// The messages to send: instructions first.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.instructions
            .iter()
            .chain(self.turns.iter())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_stay_and_old_turns_go() {
        let mut history = History::new("Be brief.", 2);
        history.push(Role::User, "one");
        history.push(Role::Assistant, "two");
        history.push(Role::User, "three");
        let messages = history.messages();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0], ChatMessage::new(Role::System, "Be brief."));
        assert_eq!(messages[1].content, "two");
        assert_eq!(messages[2].content, "three");
        assert_eq!(
            serde_json::to_string(&messages[0]).unwrap(),
            r#"{"role":"system","content":"Be brief."}"#
        );
        assert!(History::new("", 5).messages().is_empty());
    }
}
