//! Embedding agent-host in your own Rust service: a LiveKit worker in a few
//! lines.
//!
//! ```sh
//! LIVEKIT_URL=ws://localhost:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret \
//!     cargo run -p agent-host --example embed -- path/to/agent.wasm
//! ```
//!
//! Ctrl-C drains: running jobs finish, then the worker closes.

use std::sync::Arc;

use agent_host::room::offline::Offline;
use agent_host::worker::{Worker, WorkerOptions};
use agent_host::{Runtime, RuntimeConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: embed <agent.wasm>"))?;
    let env = |name: &str| std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set"));

    let runtime = Runtime::new(RuntimeConfig::default())?;
    let plugin = runtime.load_plugin(&std::fs::read(&path)?)?;
    let options = WorkerOptions {
        url: env("LIVEKIT_URL")?,
        api_key: env("LIVEKIT_API_KEY")?,
        api_secret: env("LIVEKIT_API_SECRET")?,
        ..WorkerOptions::default()
    };
    let worker = Worker::new(options, runtime, plugin, Arc::new(Offline));

    let handle = worker.handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        handle.drain();
    });
    let exit = worker.run().await?;
    println!("worker ended: {exit:?}");
    Ok(())
}
