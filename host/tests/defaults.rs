//! `--help`, the README's flag and limit tables, SECURITY.md's limits and
//! the tables in `host/src/config` agree with the table of defaults
//! (`agent_host::config`). Each check names the row or flag that disagrees.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agent_host::config::units::{flag_bytes, flag_duration, human_bytes};
use agent_host::config::{engine, job, net, ops, rooms, worker};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Each `--flag` of `agent-host <command> --help` and its text, whitespace
/// collapsed.
fn help_entries(command: &str) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_agent-host"))
        .args([command, "--help"])
        .output()
        .expect("running agent-host");
    assert!(out.status.success(), "{command} --help failed");
    let text = String::from_utf8(out.stdout).expect("UTF-8 help");
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('-') && indent < 8 {
            let flag = trimmed
                .split([' ', ','])
                .find(|w| w.starts_with("--"))
                .unwrap_or(trimmed)
                .to_string();
            entries.push((flag, String::new()));
        } else if let Some((_, body)) = entries.last_mut() {
            body.push(' ');
            body.push_str(trimmed);
        }
    }
    for (_, body) in &mut entries {
        *body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    entries
}

/// The `[default: …]` of each flag of `command --help` that shows one.
fn help_defaults(command: &str) -> Vec<(String, String)> {
    help_entries(command)
        .into_iter()
        .filter_map(|(flag, body)| {
            let (_, rest) = body.split_once("[default: ")?;
            let (value, _) = rest.split_once(']')?;
            Some((flag, value.to_string()))
        })
        .collect()
}

/// What `--help` must show for each flag whose default is in the table.
fn expected_help() -> Vec<(&'static str, String)> {
    vec![
        ("--memory-limit", flag_bytes(job::DEFAULT_MEMORY_BYTES)),
        (
            "--host-memory-limit",
            flag_bytes(job::DEFAULT_HOST_MEMORY_BYTES),
        ),
        ("--cpu-slice", flag_duration(job::DEFAULT_CPU_SLICE)),
        (
            "--job-cpu-limit",
            format!("off; WINDOW {}", flag_duration(job::DEFAULT_CPU_WINDOW)),
        ),
        ("--wall-clock-limit", "none".into()),
        (
            "--termination-grace",
            flag_duration(job::DEFAULT_TERMINATION_GRACE),
        ),
        ("--max-jobs", worker::DEFAULT_MAX_JOBS.to_string()),
        (
            "--load-threshold",
            worker::DEFAULT_LOAD_THRESHOLD.to_string(),
        ),
        (
            "--drain-timeout",
            flag_duration(worker::DEFAULT_DRAIN_TIMEOUT),
        ),
        ("--max-retries", worker::DEFAULT_MAX_RETRIES.to_string()),
        (
            "--ping-interval",
            flag_duration(worker::DEFAULT_PING_INTERVAL),
        ),
        (
            "--ping-timeout",
            flag_duration(worker::DEFAULT_PING_TIMEOUT),
        ),
        ("--max-websockets", net::DEFAULT_MAX_WEBSOCKETS.to_string()),
        (
            "--websocket-message-limit",
            flag_bytes(net::DEFAULT_WEBSOCKET_MESSAGE_BYTES),
        ),
        (
            "--websocket-buffer-limit",
            flag_bytes(net::DEFAULT_WEBSOCKET_BUFFER_BYTES),
        ),
        ("--http-host", ops::DEFAULT_HTTP_HOST.to_string()),
        ("--http-port", ops::DEFAULT_HTTP_PORT.to_string()),
    ]
}

#[test]
fn help_shows_the_defaults_of_the_table() {
    assert!(job::DEFAULT_CPU_QUOTA.is_none() && job::DEFAULT_WALL_CLOCK.is_none());
    let run = help_defaults("run");
    for (flag, expected) in expected_help() {
        let shown = run.iter().find(|(f, _)| f == flag).map(|(_, v)| v);
        assert_eq!(
            shown,
            Some(&expected),
            "`run --help` for {flag}: expected [default: {expected}]"
        );
    }
    // The limit flags are shared; every command that has them shows the same.
    let limit_flags = [
        "--memory-limit",
        "--host-memory-limit",
        "--cpu-slice",
        "--job-cpu-limit",
        "--wall-clock-limit",
    ];
    for command in ["console", "connect", "dev", "compile"] {
        for (flag, shown) in help_defaults(command) {
            if !limit_flags.contains(&flag.as_str()) {
                continue;
            }
            if let Some((_, expected)) = expected_help().into_iter().find(|(f, _)| *f == flag) {
                assert_eq!(shown, expected, "`{command} --help` for {flag}");
            }
        }
    }
    let console = help_defaults("console");
    assert!(
        console.iter().any(|(f, _)| f == "--memory-limit"),
        "`console --help` shows no default for --memory-limit: {console:?}"
    );
}

/// The rows of every markdown table in `text` whose header starts with
/// `| {first} |`, as cells (without the header and separator).
fn table_rows<'a>(text: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim_start_matches("//! ");
        if !line.starts_with('|') {
            inside = false;
            continue;
        }
        if line.starts_with(&format!("| {first} |")) {
            inside = true;
            continue;
        }
        if inside && !line.starts_with("|---") {
            rows.push(line.trim_matches('|').split(" | ").map(str::trim).collect());
        }
    }
    rows
}

/// `cell` says `value`: exactly, or followed by a non-alphanumeric
/// character (`none: no outbound HTTP`, `empty (automatic dispatch)`).
fn says(cell: &str, value: &str) -> bool {
    cell.strip_prefix(value)
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '.'))
}

#[test]
fn readme_flag_and_limit_tables_agree_with_help() {
    let readme = read("README.md");
    let rows = table_rows(&readme, "flag [env]")
        .into_iter()
        .chain(table_rows(&readme, "flag"))
        .collect::<Vec<_>>();
    assert!(
        rows.len() > 20,
        "README flag tables not found ({} rows)",
        rows.len()
    );
    let mut help = help_defaults("run");
    help.extend(help_defaults("console"));
    let mut seen = Vec::new();
    for row in &rows {
        let flags: Vec<&str> = row[0]
            .split('`')
            .filter(|w| w.starts_with("--"))
            .map(|w| w.split([' ', '[']).next().unwrap_or(w))
            .collect();
        let defaults: Vec<String> = row[1].split(", ").map(|d| d.replace('`', "")).collect();
        for (i, flag) in flags.iter().enumerate() {
            let Some((_, shown)) = help.iter().find(|(f, _)| f == flag) else {
                continue;
            };
            let shown = shown.split("; ").next().unwrap_or(shown).replace('`', "");
            let cell = defaults
                .get(i)
                .or(defaults.first())
                .expect("a default cell");
            assert!(
                says(cell, &shown),
                "README row `{}`: default of {flag} is `{cell}`, --help says `{shown}`",
                row[0]
            );
            seen.push(flag.to_string());
        }
    }
    for (flag, _) in expected_help() {
        assert!(
            seen.iter().any(|s| s == flag),
            "README has no row for {flag}"
        );
    }
    let row = |flag: &str| {
        rows.iter()
            .find(|r| r[0].contains(&format!("`{flag}")))
            .unwrap_or_else(|| panic!("README has no row for {flag}"))
            .join(" | ")
    };
    let window = human_duration_words(job::DEFAULT_CPU_WINDOW);
    assert!(
        row("--job-cpu-limit").contains(&format!("half a core over {window}")),
        "README row --job-cpu-limit: the default window is {window}"
    );
    let target = format!("target load of {}", worker::SERVER_TARGET_LOAD);
    assert!(
        row("--load-threshold").contains(&target),
        "README row --load-threshold: the server's {target}"
    );
    let backoff = format!(
        "0, {}, {} … {} apart",
        worker::RECONNECT_STEP.as_secs(),
        2 * worker::RECONNECT_STEP.as_secs(),
        human_duration_words(worker::RECONNECT_MAX_DELAY)
    );
    assert!(
        row("--max-retries").contains(&backoff),
        "README row --max-retries: the backoff is {backoff}"
    );
}

/// A duration the way the docs write it: `10 ms`, `1 s`, `7.5 s`,
/// `10 min`, `6 h`.
fn human_duration_words(d: Duration) -> String {
    let secs = d.as_secs();
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() != 0 {
        format!("{} s", d.as_secs_f64())
    } else if secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs.is_multiple_of(60) && secs >= 600 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// `n` with thousands separators, as the docs write counts (`1,024`).
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: usize) -> String {
    human_bytes(n as u64)
}

#[test]
fn security_md_states_the_limits_of_the_table() {
    let security = read("SECURITY.md");
    let flat = security.split_whitespace().collect::<Vec<_>>().join(" ");
    let cell = |first: &str, row: &str| -> String {
        table_rows(&security, first)
            .into_iter()
            .find(|r| r[0].starts_with(row))
            .unwrap_or_else(|| panic!("SECURITY.md has no `{first}` row `{row}`"))[1]
            .to_string()
    };
    let http = [
        (
            "request body",
            format!(
                "{} (`JobLimits::http_request_bytes`)",
                human_bytes(net::DEFAULT_HTTP_REQUEST_BYTES)
            ),
        ),
        (
            "response body",
            format!(
                "{} (`JobLimits::http_response_bytes`)",
                human_bytes(net::DEFAULT_HTTP_RESPONSE_BYTES)
            ),
        ),
        (
            "connect, first byte, between bytes",
            format!(
                "{} each (`JobLimits::http_timeout`)",
                human_duration_words(net::DEFAULT_HTTP_TIMEOUT)
            ),
        ),
    ];
    for (row, expected) in http {
        assert_eq!(
            cell("limit", row),
            expected,
            "SECURITY.md outbound HTTP row `{row}`"
        );
    }
    let websockets = [
        (
            "open sockets per job",
            format!(
                "{} (`JobLimits::max_websockets`)",
                net::DEFAULT_MAX_WEBSOCKETS
            ),
        ),
        (
            "message or frame, either way",
            format!(
                "{} (`JobLimits::websocket_message_bytes`)",
                human_bytes(net::DEFAULT_WEBSOCKET_MESSAGE_BYTES)
            ),
        ),
        (
            "buffered per socket, each way",
            format!(
                "{} (`JobLimits::websocket_buffer_bytes`)",
                human_bytes(net::DEFAULT_WEBSOCKET_BUFFER_BYTES)
            ),
        ),
        (
            "handshake",
            format!(
                "{} (`JobLimits::http_timeout`)",
                human_duration_words(net::DEFAULT_HTTP_TIMEOUT)
            ),
        ),
        (
            "close reason",
            format!("{} bytes", net::WEBSOCKET_CLOSE_REASON_BYTES),
        ),
    ];
    for (row, expected) in websockets {
        assert_eq!(
            cell("limit", row),
            expected,
            "SECURITY.md outbound WebSockets row `{row}`"
        );
    }
    assert!(
        flat.contains(&format!(
            "fixed overhead ({}:",
            human_bytes(net::WEBSOCKET_OVERHEAD_BYTES)
        )),
        "SECURITY.md states each socket's overhead"
    );
    // SECURITY.md gives identity and name one bound.
    assert_eq!(rooms::MAX_IDENTITY, rooms::MAX_NAME);
    let bounded = [
        (
            "a job's failure reason",
            format!("{} (`MAX_FAILURE_REASON`)", bytes(job::MAX_FAILURE_REASON)),
        ),
        (
            "a wasm backtrace",
            format!("cut to {}", bytes(job::MAX_FRAME_NAME)),
        ),
        (
            "a log line (`log` import, each stdout/stderr line, a panic message line)",
            format!("{} with the marker", bytes(job::MAX_LOG_LINE)),
        ),
        (
            "a guest value inside a host log line (identity, host name)",
            bytes(job::MAX_LOG_FIELD),
        ),
        (
            "any frame the worker sends",
            format!("{} (`MAX_SEND_FRAME`", bytes(worker::MAX_SEND_FRAME)),
        ),
        (
            "the accept (`on-request` answering `accept`)",
            format!(
                "identity and name {}, metadata {}, attributes {}",
                bytes(rooms::MAX_IDENTITY),
                bytes(rooms::MAX_METADATA),
                bytes(rooms::MAX_ATTRIBUTES)
            ),
        ),
        (
            "room, audio and server calls",
            format!(
                "{} (`max_payload_bytes`)",
                bytes(job::DEFAULT_MAX_PAYLOAD_BYTES)
            ),
        ),
    ];
    for (row, expected) in bounded {
        let text = cell("what", row);
        assert!(
            text.contains(&expected),
            "SECURITY.md bounded-output row `{row}`: `{text}` does not say `{expected}`"
        );
    }
    let prose = [
        format!(
            "epoch ticks ({})",
            human_duration_words(engine::DEFAULT_EPOCH_TICK)
        ),
        format!(
            "CPU slice (default {})",
            human_duration_words(job::DEFAULT_CPU_SLICE)
        ),
        format!(
            "(default {}, {} elements per table",
            human_bytes(job::DEFAULT_MEMORY_BYTES),
            grouped(job::MAX_TABLE_ELEMENTS)
        ),
        format!(
            "resource handles at {}",
            grouped(job::DEFAULT_MAX_RESOURCES)
        ),
        format!(
            "`resource limit of {} handles exceeded`",
            job::DEFAULT_MAX_RESOURCES
        ),
        format!(
            "bytes handed to the host per call at {}",
            bytes(job::DEFAULT_HOSTCALL_BYTES)
        ),
        format!(
            "server API calls at {}",
            bytes(job::DEFAULT_MAX_PAYLOAD_BYTES)
        ),
        format!(
            "HTTP request bodies at {} and response bodies at {}",
            human_bytes(net::DEFAULT_HTTP_REQUEST_BYTES),
            human_bytes(net::DEFAULT_HTTP_RESPONSE_BYTES)
        ),
        format!("cut at {} with a visible marker", bytes(job::MAX_LOG_LINE)),
        format!(
            "default **{}**",
            human_bytes(job::DEFAULT_HOST_MEMORY_BYTES)
        ),
        format!(
            "valid for {}",
            human_duration_words(rooms::SERVER_API_TOKEN_TTL)
        ),
        format!(
            "a call takes at most {}",
            human_duration_words(rooms::SERVER_API_CALL_TIMEOUT)
        ),
    ];
    for phrase in prose {
        assert!(
            flat.contains(&phrase),
            "SECURITY.md does not say `{phrase}`"
        );
    }
}

/// The doc tables of `host/src/config`: the per-job limits of `job.rs`
/// and the timeouts of `mod.rs`.
#[test]
fn config_doc_tables_agree_with_the_constants() {
    let limits = [
        (
            "linear memory + tables",
            human_bytes(job::DEFAULT_MEMORY_BYTES),
        ),
        (
            "host memory held for the guest",
            human_bytes(job::DEFAULT_HOST_MEMORY_BYTES),
        ),
        ("CPU slice", human_duration_words(job::DEFAULT_CPU_SLICE)),
        (
            "termination grace",
            human_duration_words(job::DEFAULT_TERMINATION_GRACE),
        ),
        ("resource handles", grouped(job::DEFAULT_MAX_RESOURCES)),
        ("bytes per host call", bytes(job::DEFAULT_HOSTCALL_BYTES)),
        ("room payload", bytes(job::DEFAULT_MAX_PAYLOAD_BYTES)),
        (
            "outbound HTTP request body",
            human_bytes(net::DEFAULT_HTTP_REQUEST_BYTES),
        ),
        (
            "outbound HTTP response body",
            human_bytes(net::DEFAULT_HTTP_RESPONSE_BYTES),
        ),
        (
            "outbound HTTP waits",
            human_duration_words(net::DEFAULT_HTTP_TIMEOUT),
        ),
        ("open WebSockets", net::DEFAULT_MAX_WEBSOCKETS.to_string()),
        (
            "WebSocket message",
            human_bytes(net::DEFAULT_WEBSOCKET_MESSAGE_BYTES),
        ),
        (
            "WebSocket buffer, each direction",
            human_bytes(net::DEFAULT_WEBSOCKET_BUFFER_BYTES),
        ),
        ("table elements", grouped(job::MAX_TABLE_ELEMENTS)),
        ("log line", bytes(job::MAX_LOG_LINE)),
        ("failure reason", bytes(job::MAX_FAILURE_REASON)),
        ("guest value in a host log line", bytes(job::MAX_LOG_FIELD)),
        ("function name in a backtrace", bytes(job::MAX_FRAME_NAME)),
        (
            "stderr lines kept for a failure reason",
            job::STDERR_TAIL_LINES.to_string(),
        ),
    ];
    let job_rs = read("host/src/config/job.rs");
    let rows = table_rows(&job_rs, "limit");
    for (name, expected) in limits {
        let row = rows
            .iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("config/job.rs has no row `{name}`"));
        assert_eq!(row[1], expected, "config/job.rs row `{name}`");
    }
    let none = |d: Option<Duration>| d.map_or("none".into(), human_duration_words);
    let timeouts = [
        (
            "job::DEFAULT_CPU_SLICE",
            human_duration_words(job::DEFAULT_CPU_SLICE),
        ),
        ("job::DEFAULT_WALL_CLOCK", none(job::DEFAULT_WALL_CLOCK)),
        (
            "job::DEFAULT_TERMINATION_GRACE",
            human_duration_words(job::DEFAULT_TERMINATION_GRACE),
        ),
        (
            "job::DEFAULT_CPU_WINDOW",
            human_duration_words(job::DEFAULT_CPU_WINDOW),
        ),
        (
            "job::PREWARM_TIMEOUT",
            human_duration_words(job::PREWARM_TIMEOUT),
        ),
        (
            "engine::DEFAULT_EPOCH_TICK",
            human_duration_words(engine::DEFAULT_EPOCH_TICK),
        ),
        (
            "worker::DEFAULT_DRAIN_TIMEOUT",
            human_duration_words(worker::DEFAULT_DRAIN_TIMEOUT),
        ),
        (
            "worker::DEFAULT_OFFER_TIMEOUT",
            human_duration_words(worker::DEFAULT_OFFER_TIMEOUT),
        ),
        (
            "worker::DEFAULT_ASSIGNMENT_TIMEOUT",
            human_duration_words(worker::DEFAULT_ASSIGNMENT_TIMEOUT),
        ),
        (
            "worker::DEFAULT_REGISTER_TIMEOUT",
            human_duration_words(worker::DEFAULT_REGISTER_TIMEOUT),
        ),
        (
            "worker::CONNECT_TIMEOUT",
            human_duration_words(worker::CONNECT_TIMEOUT),
        ),
        (
            "worker::DEFAULT_STATUS_INTERVAL",
            human_duration_words(worker::DEFAULT_STATUS_INTERVAL),
        ),
        (
            "worker::DEFAULT_PING_INTERVAL",
            human_duration_words(worker::DEFAULT_PING_INTERVAL),
        ),
        (
            "worker::DEFAULT_PING_TIMEOUT",
            human_duration_words(worker::DEFAULT_PING_TIMEOUT),
        ),
        (
            "worker::RECONNECT_STEP",
            human_duration_words(worker::RECONNECT_STEP),
        ),
        (
            "worker::RECONNECT_MAX_DELAY",
            human_duration_words(worker::RECONNECT_MAX_DELAY),
        ),
        (
            "worker::WORKER_TOKEN_TTL",
            human_duration_words(worker::WORKER_TOKEN_TTL),
        ),
        (
            "net::DEFAULT_HTTP_TIMEOUT",
            human_duration_words(net::DEFAULT_HTTP_TIMEOUT),
        ),
        (
            "rooms::ROOM_CONNECT_TIMEOUT",
            human_duration_words(rooms::ROOM_CONNECT_TIMEOUT),
        ),
        (
            "rooms::ROOM_CALL_TIMEOUT",
            human_duration_words(rooms::ROOM_CALL_TIMEOUT),
        ),
        (
            "rooms::ROOM_DISCONNECT_TIMEOUT",
            human_duration_words(rooms::ROOM_DISCONNECT_TIMEOUT),
        ),
        (
            "rooms::LEAVE_TIMEOUT",
            human_duration_words(rooms::LEAVE_TIMEOUT),
        ),
        (
            "rooms::SERVER_API_CALL_TIMEOUT",
            human_duration_words(rooms::SERVER_API_CALL_TIMEOUT),
        ),
        (
            "rooms::SERVER_API_TOKEN_TTL",
            human_duration_words(rooms::SERVER_API_TOKEN_TTL),
        ),
        (
            "rooms::PARTICIPANT_TOKEN_TTL",
            human_duration_words(rooms::PARTICIPANT_TOKEN_TTL),
        ),
        (
            "rooms::RPC_MAX_RESPONSE_TIMEOUT",
            human_duration_words(rooms::RPC_MAX_RESPONSE_TIMEOUT),
        ),
        ("ops::ACCEPT_RETRY", human_duration_words(ops::ACCEPT_RETRY)),
        (
            "ops::WATCH_DEBOUNCE",
            human_duration_words(ops::WATCH_DEBOUNCE),
        ),
    ];
    let mod_rs = read("host/src/config/mod.rs");
    let rows = table_rows(&mod_rs, "timeout");
    let mut checked = 0;
    for row in &rows {
        let constants: Vec<&str> = row[2]
            .split(", ")
            .map(|c| c.trim_matches(['[', ']', '`']))
            .collect();
        let values: Vec<&str> = row[1].split(", ").collect();
        assert_eq!(
            constants.len(),
            values.len(),
            "config/mod.rs row `{}`",
            row[0]
        );
        for (constant, value) in constants.iter().zip(values) {
            let (_, expected) = timeouts
                .iter()
                .find(|(c, _)| c == constant)
                .unwrap_or_else(|| {
                    panic!(
                        "config/mod.rs row `{}`: {constant} is not checked here",
                        row[0]
                    )
                });
            assert_eq!(
                value, expected,
                "config/mod.rs row `{}` ({constant})",
                row[0]
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        timeouts.len(),
        "every timeout has its row in config/mod.rs"
    );
}
