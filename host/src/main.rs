//! The `agent-host` command: a thin layer over the `agent_host` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
