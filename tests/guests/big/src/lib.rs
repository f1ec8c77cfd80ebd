//! Big: a trivial agent carrying 40 MiB of initialised data, to measure
//! loading a plugin the size of a Python or JavaScript guest
//! (`cargo bench -p agent-host-tests --bench aot`).

use agent_host_sdk::{Agent, JobContext};

/// The data segment; `build.rs` writes it.
static DATA: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/data.bin"));

struct Big;

impl Agent for Big {
    fn run(_ctx: JobContext) -> Result<(), String> {
        // Read through `black_box` so the data stays in the component.
        let data = std::hint::black_box(DATA);
        agent_host_sdk::info!("{} bytes, last {}", data.len(), data[data.len() - 1]);
        Ok(())
    }
}

agent_host_sdk::export_agent!(Big);
