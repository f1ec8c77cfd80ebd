//! `fake-livekit`: run the fake agent service by hand.
//!
//! ```text
//! cargo run -p fake-livekit -- [--port 7880] [--api-key devkey] [--api-secret secret]
//!     [--room-url ws://HOST:PORT] [--dispatch-every-ms N --agent NAME [--count C]]
//! ```
//! Then type commands on stdin:
//! `dispatch <room> [agent] [metadata]`, `terminate <job>`, `workers`,
//! `jobs`, `log`, `kill`, `quit`.

use std::time::Duration;

use fake_livekit::{Config, DispatchRequest, FakeLiveKit, JobId};
use tokio::io::AsyncBufReadExt;

fn usage() -> ! {
    eprintln!(
        "usage: fake-livekit [--port P] [--api-key K] [--api-secret S] [--room-url URL] [--dispatch-every-ms N --agent NAME [--count C]]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config {
        port: 7880,
        ..Config::default()
    };
    let (mut every, mut agent, mut count) = (None, String::new(), 10u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--port" => config.port = val().parse()?,
            "--api-key" => config.api_key = val(),
            "--api-secret" => config.api_secret = val(),
            "--room-url" => config.room_url = Some(val()),
            "--dispatch-every-ms" => every = Some(Duration::from_millis(val().parse()?)),
            "--agent" => agent = val(),
            "--count" => count = val().parse()?,
            _ => usage(),
        }
    }
    let server = FakeLiveKit::start(config).await?;
    println!(
        "LIVEKIT_URL={} LIVEKIT_API_KEY={} LIVEKIT_API_SECRET={}",
        server.url(),
        server.config().api_key,
        server.config().api_secret
    );

    if let Some(every) = every {
        let s = server.clone();
        tokio::spawn(async move {
            for i in 0..count {
                tokio::time::sleep(every).await;
                let id = s.dispatch(DispatchRequest::new(format!("room-{i}"), agent.clone()));
                println!("dispatched {id}");
            }
        });
    }

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["dispatch", room, rest @ ..] => {
                let agent = rest.first().copied().unwrap_or("");
                let meta = rest.get(1..).map(|m| m.join(" ")).unwrap_or_default();
                let job = server
                    .dispatch_and_wait(
                        DispatchRequest::new(*room, agent).metadata(meta),
                        Duration::from_secs(15),
                    )
                    .await;
                match job {
                    Ok(j) => println!("{} {:?}", j.id, j.outcome),
                    Err(e) => println!("error: {e}"),
                }
            }
            ["terminate", id] => println!("{:?}", server.terminate_job(&JobId::from(*id))),
            ["workers"] => {
                for w in server.workers() {
                    println!(
                        "{} agent={:?} status={:?} load={:.2} jobs={} connected={} version={}",
                        w.id,
                        w.agent_name,
                        w.worker_status(),
                        w.load,
                        w.job_count,
                        w.connected,
                        w.version
                    );
                }
            }
            ["jobs"] => {
                for j in server.jobs() {
                    println!(
                        "{} room={} {:?} status={:?} worker={:?}",
                        j.id, j.room.name, j.outcome, j.status, j.worker_id
                    );
                }
            }
            ["log"] => {
                for m in server.messages() {
                    println!("#{} {:?} {:?}", m.connection, m.worker_id, m.dir);
                }
            }
            ["kill"] => println!("killed {}", server.kill_connections()),
            ["quit"] | ["exit"] => break,
            [] => {}
            _ => println!(
                "commands: dispatch <room> [agent] [metadata] | terminate <job> | workers | jobs | log | kill | quit"
            ),
        }
    }
    Ok(())
}
