//! Greeter: says hello to everyone present when the job starts and to each
//! participant who joins, and goodbye to each who leaves.

use agent_host_sdk::{Agent, JobContext, Participant, RoomEvent};

struct Greeter;

/// The name to greet someone by: the display name, else the identity.
fn display_name(participant: &Participant) -> &str {
    if participant.name.is_empty() {
        &participant.identity
    } else {
        &participant.name
    }
}

impl Agent for Greeter {
    fn run(ctx: JobContext) -> Result<(), String> {
        let room = ctx.room();
        for participant in room.participants() {
            room.send_text(&format!("Hello, {}!", display_name(&participant)))?;
        }
        for event in room.events() {
            match event {
                RoomEvent::ParticipantJoined(participant) => {
                    room.send_text(&format!("Hello, {}!", display_name(&participant)))?;
                }
                RoomEvent::ParticipantLeft(participant) => {
                    room.send_text(&format!("Goodbye, {}!", display_name(&participant)))?;
                }
                RoomEvent::Closed(reason) => agent_host_sdk::info!("room closed: {reason:?}"),
                _ => {}
            }
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(Greeter);
