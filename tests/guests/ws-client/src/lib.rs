//! The SDK's async WebSocket client end to end, against an echo server.
//!
//! Job metadata `<count> <url>`: opens `url` with a header, then in one task sends `count` text messages while it
//! reads their echoes (`future::zip`: a send waiting for room in the
//! host's buffer does not hold up the reads), checks each echo, closes
//! with 4000 and reads until the close. Reports
//! `echoed <n>, close <code> <reason>` into the room, or fails the job with
//! the error.

use agent_host_sdk::futures_lite::future;
use agent_host_sdk::websocket::{Message, WebSocket};
use agent_host_sdk::{AsyncAgent, JobContext};

struct WsClient;

impl AsyncAgent for WsClient {
    async fn run(ctx: JobContext) -> Result<(), String> {
        let metadata = ctx.info().metadata;
        let (count, url) = metadata.split_once(' ').ok_or("metadata: <count> <url>")?;
        let count: u32 = count.parse().map_err(|_| "metadata: <count> <url>")?;
        let socket = WebSocket::builder(url)
            .header("x-client", "ws-client")
            .connect()
            .await?;
        let send = async {
            for i in 0..count {
                socket.send(Message::Text(format!("message {i}"))).await?;
            }
            Ok::<_, String>(())
        };
        let receive = async {
            for i in 0..count {
                let echo = socket.recv().await.ok_or("closed before every echo")??;
                if echo != Message::Text(format!("message {i}")) {
                    return Err(format!("echo {i} was {echo:?}"));
                }
            }
            Ok(count)
        };
        let (sent, echoed) = future::zip(send, receive).await;
        sent?;
        let echoed = echoed?;
        socket.close(4000, "bye")?;
        if let Some(message) = socket.recv().await {
            return Err(format!("{message:?} after the echoes"));
        }
        let close = socket
            .close_frame()
            .map_or("none".to_owned(), |f| format!("{} {}", f.code, f.reason));
        ctx.room()
            .send_text(&format!("echoed {echoed}, close {close}"))?;
        Ok(())
    }
}

agent_host_sdk::export_agent!(async WsClient);
