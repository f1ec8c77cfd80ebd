//! Running the `agent-host` binary in tests: start it, read its JSON
//! logs, signal it, and talk HTTP to its health server.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use fake_livekit::FakeLiveKit;

use crate::agent_host_for_fake_server;
use crate::worker::WAIT;

/// A running `agent-host run` process; killed when dropped.
pub struct Host {
    /// The process.
    pub child: Child,
    /// Its log lines, parsed from JSON.
    pub logs: mpsc::Receiver<serde_json::Value>,
    raw: Arc<Mutex<Vec<String>>>,
}

/// Starts `agent-host run` against `server` with JSON logs on a random
/// loopback health port; `extra` adds flags (at least one `--plugin`).
pub fn spawn_host(server: &FakeLiveKit, secret: &str, extra: &[&str]) -> Host {
    let mut command = run_command(&server.url(), &server.config().api_key, secret, extra);
    Host::new(command.spawn().expect("starting agent-host run"))
}

/// `agent-host run` against the server at `url`, with JSON logs on stderr
/// (piped) and a random loopback health port, not started yet (to add
/// environment variables); `extra` adds flags (at least one `--plugin`).
/// Start it with [`Host::new`]`(command.spawn()?)`.
pub fn run_command(url: &str, api_key: &str, secret: &str, extra: &[&str]) -> Command {
    let mut command = agent_host_for_fake_server();
    command
        .args(["--log-format", "json", "run"])
        .args(["--url", url, "--api-key", api_key])
        .args(["--api-secret", secret])
        .args([
            "--http-host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--max-jobs",
            "50",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

impl Host {
    /// Takes over a spawned `agent-host` whose stderr is piped and carries
    /// JSON logs.
    pub fn new(mut child: Child) -> Host {
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, logs) = mpsc::channel();
        let raw = Arc::new(Mutex::new(Vec::new()));
        let raw_lines = raw.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or_else(|_| {
                    raw_lines.lock().unwrap().push(line.clone());
                    serde_json::Value::String(line)
                });
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Host { child, logs, raw }
    }

    /// Every line on stderr so far that was not a JSON log line (cargo's
    /// and the compiler's output, for instance).
    pub fn raw_lines(&self) -> Vec<String> {
        self.raw.lock().unwrap().clone()
    }

    /// Waits for a log line whose message is `message`; returns its fields.
    pub fn wait_log(&self, message: &str) -> serde_json::Value {
        self.wait_log_within(message, WAIT)
    }

    /// [`Host::wait_log`], waiting up to `timeout` (for what follows a
    /// slow build, such as a JavaScript project's).
    pub fn wait_log_within(&self, message: &str, timeout: Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.logs.recv_timeout(left) {
                Ok(line) if line["fields"]["message"] == message => return line["fields"].clone(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no `{message}` log line");
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("agent-host did not exit");
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on loopback: (status code, body).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, "GET", path, None, &[])
}

/// A plain HTTP/1.1 POST on loopback with an optional bearer token:
/// (status code, body).
pub fn post(addr: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    request(addr, "POST", path, token, body)
}

/// One request on a fresh connection, read to its end.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
