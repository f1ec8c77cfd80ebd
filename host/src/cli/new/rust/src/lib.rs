//! {{name}}: a LiveKit agent in Rust. It greets the room, then answers every
//! chat message with its text reversed. Edit `run`; `agent-host dev`
//! rebuilds and swaps it in on save.

use agent_host_sdk::{Agent, JobContext, RoomError, RoomEvent, TextOptions};

struct App;

impl Agent for App {
    fn run(ctx: JobContext) -> Result<(), String> {
        let room = ctx.room();
        room.send_text("Hello from {{name}}!")?;
        for event in room.events() {
            if let RoomEvent::TextReceived(msg) = event {
                let reversed: String = msg.text.chars().rev().collect();
                match room.send_text_with(
                    &reversed,
                    TextOptions {
                        topic: msg.topic,
                        destinations: vec![msg.sender],
                    },
                ) {
                    // The room closed meanwhile: nobody is left to answer.
                    Ok(()) | Err(RoomError::Closed) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(App);
