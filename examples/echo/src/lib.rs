//! Echo: replies to every text message and data packet with the same
//! content, addressed only to the sender.

use agent_host_sdk::{Agent, DataOptions, JobContext, RoomError, RoomEvent, TextOptions};

struct Echo;

/// A reply to someone in a room that closed meanwhile has nobody to reach:
/// that ends the conversation, not the job with a failure.
fn unless_closed(sent: Result<(), RoomError>) -> Result<(), RoomError> {
    match sent {
        Err(RoomError::Closed) => Ok(()),
        sent => sent,
    }
}

impl Agent for Echo {
    fn run(ctx: JobContext) -> Result<(), String> {
        let room = ctx.room();
        for event in room.events() {
            match event {
                RoomEvent::TextReceived(msg) => {
                    agent_host_sdk::debug!("echoing text from {} on {}", msg.sender, msg.topic);
                    unless_closed(room.send_text_with(
                        &msg.text,
                        TextOptions {
                            topic: msg.topic,
                            destinations: vec![msg.sender],
                        },
                    ))?;
                }
                // Packets from the server itself have no sender to answer.
                RoomEvent::DataReceived(packet) => {
                    if let Some(sender) = packet.sender {
                        agent_host_sdk::debug!(
                            "echoing {} bytes to {sender}",
                            packet.payload.len()
                        );
                        unless_closed(room.publish_data(
                            &packet.payload,
                            DataOptions {
                                topic: packet.topic,
                                destinations: vec![sender],
                                ..DataOptions::default()
                            },
                        ))?;
                    }
                }
                RoomEvent::Closed(reason) => agent_host_sdk::info!("room closed: {reason:?}"),
                _ => {}
            }
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(Echo);
