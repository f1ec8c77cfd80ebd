//! A guest built against `agent-host:agent@0.1.0` (the WIT in `wit/` here is
//! a frozen copy of that release), with wit-bindgen directly rather than the
//! SDK, which follows the newest WIT. It answers each chat message with
//! `legacy: <text>` to its sender, so a test can prove that a host serving a
//! newer `0.1.x` still runs it, room events included.

wit_bindgen::generate!({
    path: "wit",
    world: "agent",
});

use agent_host::agent::room;
use agent_host::agent::types::{AcceptOptions, RoomEvent};

struct Legacy;

impl Guest for Legacy {
    fn on_request(_request: JobRequest) -> Decision {
        Decision::Accept(AcceptOptions {
            identity: String::new(),
            name: String::new(),
            metadata: String::new(),
            attributes: Vec::new(),
        })
    }

    fn run() -> Result<(), String> {
        loop {
            match room::next_event(None) {
                Some(RoomEvent::TextReceived(msg)) => {
                    let reply = format!("legacy: {}", msg.text);
                    room::send_text(&reply, &msg.topic, &[msg.sender])
                        .map_err(|e| format!("{e:?}"))?;
                }
                Some(RoomEvent::Closed(_)) | None => return Ok(()),
                Some(_) => {}
            }
        }
    }
}

export!(Legacy);
