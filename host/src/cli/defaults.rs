//! The defaults `--help` shows, read from [`agent_host::config`]: each
//! flag whose default is a number, size, duration or address gets
//! `[default: …]` from the constant, so help and code cannot drift apart.
//!
//! Policy: a flag keeps its own text; only the default is derived. Flags
//! whose default clap applies itself (`default_value`) already show it and
//! are left alone; flags whose value falls back to the config file are
//! `Option`s, which is why clap cannot show their defaults on its own.

use agent_host::config::units::{flag_bytes, flag_duration};
use agent_host::config::{job, net, ops, worker};
use clap::Command;

/// The default shown for the flag with clap id `id` (its field name), if
/// it comes from the table of defaults.
pub fn shown_default(id: &str) -> Option<String> {
    Some(match id {
        "memory_limit" => flag_bytes(job::DEFAULT_MEMORY_BYTES),
        "host_memory_limit" => flag_bytes(job::DEFAULT_HOST_MEMORY_BYTES),
        "cpu_slice" => flag_duration(job::DEFAULT_CPU_SLICE),
        "job_cpu_limit" => {
            let quota = match job::DEFAULT_CPU_QUOTA {
                None => "off".to_string(),
                Some(q) => format!("{}/{}", q.share, flag_duration(q.window)),
            };
            format!("{quota}; WINDOW {}", flag_duration(job::DEFAULT_CPU_WINDOW))
        }
        "wall_clock_limit" => job::DEFAULT_WALL_CLOCK.map_or("none".into(), flag_duration),
        "termination_grace" => flag_duration(job::DEFAULT_TERMINATION_GRACE),
        "max_jobs" => worker::DEFAULT_MAX_JOBS.to_string(),
        "load_threshold" => worker::DEFAULT_LOAD_THRESHOLD.to_string(),
        "drain_timeout" => flag_duration(worker::DEFAULT_DRAIN_TIMEOUT),
        "max_retries" => worker::DEFAULT_MAX_RETRIES.to_string(),
        "ping_interval" => flag_duration(worker::DEFAULT_PING_INTERVAL),
        "ping_timeout" => flag_duration(worker::DEFAULT_PING_TIMEOUT),
        "max_websockets" => net::DEFAULT_MAX_WEBSOCKETS.to_string(),
        "websocket_message_limit" => flag_bytes(net::DEFAULT_WEBSOCKET_MESSAGE_BYTES),
        "websocket_buffer_limit" => flag_bytes(net::DEFAULT_WEBSOCKET_BUFFER_BYTES),
        "http_host" => ops::DEFAULT_HTTP_HOST.to_string(),
        "http_port" => ops::DEFAULT_HTTP_PORT.to_string(),
        _ => return None,
    })
}

/// `command` and all its subcommands, with `[default: …]` appended to the
/// help of every flag [`shown_default`] knows.
pub fn show_defaults(command: Command) -> Command {
    command
        .mut_args(|arg| match shown_default(arg.get_id().as_str()) {
            Some(shown) if arg.get_default_values().is_empty() => {
                let suffix = format!(" [default: {shown}]");
                let long = arg.get_long_help().map(|h| format!("{h}{suffix}"));
                let help = format!(
                    "{}{suffix}",
                    arg.get_help().map(ToString::to_string).unwrap_or_default()
                );
                let arg = arg.help(help);
                match long {
                    Some(long) => arg.long_help(long),
                    None => arg,
                }
            }
            _ => arg,
        })
        .mut_subcommands(show_defaults)
}
