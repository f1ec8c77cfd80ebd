//! Greeter: says hello to everyone present when the job starts and to each
//! participant who joins, and goodbye to each who leaves.

use agent_host_sdk::{Agent, JobContext, Participant, Room, RoomError, RoomEvent};

struct Greeter;

/// The name to greet someone by: the display name, else the identity.
fn display_name(participant: &Participant) -> &str {
    if participant.name.is_empty() {
        &participant.identity
    } else {
        &participant.name
    }
}

/// Says `text` to everyone. A room that closed meanwhile (the last
/// participant left and the server deleted it) has nobody left to hear it:
/// that is not a failure of the job.
fn say(room: &Room, text: &str) -> Result<(), RoomError> {
    match room.send_text(text) {
        Err(RoomError::Closed) => Ok(()),
        said => said,
    }
}

impl Agent for Greeter {
    fn run(ctx: JobContext) -> Result<(), String> {
        let room = ctx.room();
        for participant in room.participants() {
            say(&room, &format!("Hello, {}!", display_name(&participant)))?;
        }
        for event in room.events() {
            match event {
                RoomEvent::ParticipantJoined(participant) => {
                    say(&room, &format!("Hello, {}!", display_name(&participant)))?;
                }
                RoomEvent::ParticipantLeft(participant) => {
                    say(&room, &format!("Goodbye, {}!", display_name(&participant)))?;
                }
                RoomEvent::Closed(reason) => agent_host_sdk::info!("room closed: {reason:?}"),
                _ => {}
            }
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(Greeter);
