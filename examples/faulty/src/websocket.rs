//! Modes on the raw `websocket` import: an echo client that waits on both
//! directions with one `poll`, and a hoarder that opens sockets until the
//! host refuses one and never reads them.

use std::time::Duration;

use agent_host_sdk::__bindings::agent_host::agent::websocket::{
    self, ConnectOptions, Connection, Message, WebsocketError,
};
use agent_host_sdk::JobContext;
use wasip2::io::poll::poll;

fn options() -> ConnectOptions {
    ConnectOptions {
        headers: Vec::new(),
        subprotocols: Vec::new(),
        timeout_ms: None,
    }
}

/// Opens a socket to `url`, waiting on the handshake's pollable.
fn open(url: &str) -> Result<Connection, WebsocketError> {
    let future = websocket::connect(url, &options())?;
    loop {
        if let Some(result) = future.get() {
            return result;
        }
        future.subscribe().block();
    }
}

fn failed(what: &str) -> impl Fn(WebsocketError) -> String + '_ {
    move |err| format!("faulty: websocket {what}: {err:?}")
}

/// `websocket-echo`: sends `count` messages and reads as many echoes,
/// queuing as many as the host takes and waiting on both directions with
/// one `poll` when it can do neither; then closes and waits for the
/// peer's close.
pub fn echo(ctx: &JobContext, count: u32, url: &str) -> Result<(), String> {
    let socket = open(url).map_err(failed("connect"))?;
    let (mut sent, mut echoed) = (0u32, 0u32);
    while echoed < count {
        let mut progress = false;
        while sent < count {
            match socket.send(&Message::Text(format!("message {sent}"))) {
                Ok(()) => {
                    sent += 1;
                    progress = true;
                }
                Err(WebsocketError::WouldBlock) => break,
                Err(err) => return Err(failed("send")(err)),
            }
        }
        while let Some(message) = socket.receive().map_err(failed("receive"))? {
            let expected = format!("message {echoed}");
            if message != Message::Text(expected.clone()) {
                return Err(format!(
                    "faulty: echo {echoed} was {message:?}, not {expected}"
                ));
            }
            echoed += 1;
            progress = true;
        }
        if !progress {
            let readable = socket.subscribe();
            if sent < count {
                let writable = socket.subscribe_send();
                poll(&[&readable, &writable]);
            } else {
                readable.block();
            }
        }
    }
    socket.close(1000, "done").map_err(failed("close"))?;
    // The closing handshake: the peer's close frame comes after every
    // message it sent before it.
    let end = loop {
        match socket.receive() {
            Ok(Some(message)) => return Err(format!("faulty: {message:?} after the echoes")),
            Ok(None) => socket.subscribe().block(),
            Err(end) => break end,
        }
    };
    ctx.room()
        .send_text(&format!("echoed {echoed} of {count}, then {end:?}"))?;
    Ok(())
}

/// `websocket-hoard`: opens sockets until the host refuses one, reads
/// nothing for 2 s, reports, and returns holding them all.
pub fn hoard(ctx: &JobContext, url: &str) -> Result<(), String> {
    // Far above any cap the host sets: the host is what stops it.
    const MAX: usize = 1000;
    let mut held = Vec::new();
    let refused = loop {
        if held.len() == MAX {
            return Err(format!("faulty: held {MAX} websockets and hit no limit"));
        }
        match open(url) {
            Ok(socket) => held.push(socket),
            Err(err) => break err,
        }
    };
    std::thread::sleep(Duration::from_secs(2));
    ctx.room()
        .send_text(&format!("websockets: {}, then {refused:?}", held.len()))?;
    // The job's end, not the guest, closes them.
    std::mem::forget(held);
    Ok(())
}
