//! Credentials the guest never sees: the operator's header reaches the
//! destination it names and no other, never a denied one, never a
//! redirect's target, replaces the guest's own, and shows nowhere the
//! guest (or a log reader) can look.
//!
//! Every test runs real guests (`http-fetch`, and `faulty`'s
//! `http-follow`, which sends its own `Authorization`, follows redirects
//! itself and reports every response whole) against recording HTTP
//! servers on loopback; each secret is unique to its test.

use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_host::{Credential, Credentials, HttpAllowList, JobLimits, Outcome};
use agent_host_tests::process::{Host, run_command};
use agent_host_tests::sim::run_to_end;
use agent_host_tests::worker::{WAIT, dispatch, server, wait_worker_status};
use agent_host_tests::{agent_host_command, guests};
use bytes::Bytes;
use fake_livekit::livekit_protocol::JobStatus;
use faulty_mode::Mode;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::net::TcpListener;

/// Every log line of the host at every level, `trace` included, but for
/// the compiler's: cranelift sees Wasm code only, never a header, and at
/// `trace` it makes a cold compile of a plugin take most of a minute.
const EVERY_LOG_LINE: &str = "trace,cranelift_codegen=info,cranelift_frontend=info,wasmtime_internal_cranelift=info,regalloc2=info";

/// A loopback HTTP/1.1 server that records the headers of every request:
/// `/hello` answers a short text, `/redirect/<port>` a 302 to
/// `http://127.0.0.1:<port>/hello`, `/drop` closes the connection without
/// an answer, anything else 404.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<http::HeaderMap>>>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    record.lock().unwrap().push(request.headers().clone());
                    async move { answer(request.uri().path()) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self { port, seen }
    }

    /// The `authorization` values of every request so far, in order.
    fn authorizations(&self) -> Vec<Vec<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|headers| {
                headers
                    .get_all("authorization")
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    /// The `host` header of every request so far, in order.
    fn hosts(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|headers| headers["host"].to_str().unwrap().to_owned())
            .collect()
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

type Answer = Result<http::Response<Full<Bytes>>, std::io::Error>;

fn answer(path: &str) -> Answer {
    let response = http::Response::builder();
    let response = if path == "/hello" {
        response.body(Full::from("hello from loopback"))
    } else if let Some(port) = path.strip_prefix("/redirect/") {
        response
            .status(302)
            .header("location", format!("http://127.0.0.1:{port}/hello"))
            .body(Full::default())
    } else if path == "/drop" {
        return Err(std::io::Error::other("dropped on purpose"));
    } else {
        response.status(404).body(Full::default())
    };
    Ok(response.unwrap())
}

/// A secret no other test uses, and the credential that reads it for
/// `127.0.0.1:<port>` from a variable only this credential sees.
fn secret_for(port: u16, tag: &str) -> (String, Credential) {
    let secret = format!("sk-{tag}-{}-{port}", std::process::id());
    let value = secret.clone();
    let credential = Credential::with_env(
        &format!("127.0.0.1:{port}"),
        "Authorization",
        "Bearer {env:TEST_KEY}",
        move |name| (name == "TEST_KEY").then(|| OsString::from(&value)),
    )
    .unwrap();
    (secret, credential)
}

/// Limits that allow every server's port and hold `credentials`.
fn limits(servers: &[&Server], credentials: Vec<Credential>) -> JobLimits {
    JobLimits {
        http_allow: HttpAllowList::parse(
            servers.iter().map(|s| format!("127.0.0.1:{}", s.port)),
            false,
        )
        .unwrap(),
        credentials: Credentials::new(credentials).unwrap(),
        ..JobLimits::default()
    }
}

/// Runs `guest` on `metadata` under `limits`: the outcome and the texts it
/// sent to the room.
async fn run(guest: &str, metadata: &str, limits: JobLimits) -> (Outcome, Vec<String>) {
    let id = format!("AJ_cred_{}", metadata.len());
    run_to_end(guest, &id, metadata, limits).await
}

/// Asserts that nothing the guest saw, nor the job's outcome, holds
/// `secret`.
fn assert_unseen(secret: &str, outcome: &Outcome, texts: &[String]) {
    assert!(!outcome.to_string().contains(secret), "{outcome}");
    assert!(!format!("{outcome:?}").contains(secret), "{outcome:?}");
    for text in texts {
        assert!(!text.contains(secret), "the guest saw the secret: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_reaches_its_destination_and_no_other() {
    let (a, b) = (Server::start().await, Server::start().await);
    let (secret, credential) = secret_for(a.port, "dest");
    let limits = limits(&[&a, &b], vec![credential]);
    let (outcome, texts) = run(guests::HTTP_FETCH, &a.url("/hello"), limits.clone()).await;
    assert_eq!(outcome, Outcome::Success, "{texts:?}");
    assert_eq!(texts, ["200 hello from loopback"]);
    assert_eq!(a.authorizations(), [[format!("Bearer {secret}")]]);
    // Another allowed destination: nothing.
    let (outcome, texts) = run(guests::HTTP_FETCH, &b.url("/hello"), limits).await;
    assert_eq!(outcome, Outcome::Success, "{texts:?}");
    assert_eq!(b.authorizations(), [Vec::<String>::new()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_gets_no_credential_and_reaches_no_server() {
    let a = Server::start().await;
    let (secret, credential) = secret_for(a.port, "denied");
    // Not on the allow-list at all.
    let no_rule = JobLimits {
        credentials: Credentials::new([credential]).unwrap(),
        ..JobLimits::default()
    };
    let (outcome, texts) = run(guests::HTTP_FETCH, &a.url("/hello"), no_rule).await;
    assert!(
        outcome.to_string().contains("HttpRequestDenied"),
        "{outcome}"
    );
    assert_unseen(&secret, &outcome, &texts);
    // Allowed by name, but the name is loopback: the address check refuses.
    let value = secret.clone();
    let by_name = JobLimits {
        http_allow: HttpAllowList::parse([format!("localhost:{}", a.port)], false).unwrap(),
        credentials: Credentials::new([Credential::with_env(
            &format!("localhost:{}", a.port),
            "Authorization",
            "{env:K}",
            move |_| Some(OsString::from(&value)),
        )
        .unwrap()])
        .unwrap(),
        ..JobLimits::default()
    };
    let url = format!("http://localhost:{}/hello", a.port);
    let (outcome, texts) = run(guests::HTTP_FETCH, &url, by_name).await;
    assert!(
        outcome.to_string().contains("DestinationIpProhibited"),
        "{outcome}"
    );
    assert_unseen(&secret, &outcome, &texts);
    assert_eq!(a.hits(), 0, "a denied request reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_never_followed_with_the_secret() {
    let (a, b) = (Server::start().await, Server::start().await);
    let (secret, credential) = secret_for(a.port, "redirect");
    let limits = limits(&[&a, &b], vec![credential]);
    let to_b = a.url(&format!("/redirect/{}", b.port));
    // The host hands the guest the 3xx and follows nothing.
    let (outcome, texts) = run(guests::HTTP_FETCH, &to_b, limits.clone()).await;
    assert_eq!(outcome, Outcome::Success, "{texts:?}");
    assert_eq!(texts, ["302 "]);
    assert_eq!(b.hits(), 0, "the host followed the redirect");
    // A guest that follows it itself reaches the target with its own
    // header only.
    let (outcome, texts) = run(guests::FAULTY, &Mode::HttpFollow(to_b).to_string(), limits).await;
    assert_eq!(outcome, Outcome::Success, "{texts:?}");
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with("302\n"), "{texts:?}");
    assert!(texts[1].starts_with("200\n"), "{texts:?}");
    assert_unseen(&secret, &outcome, &texts);
    let guests_own = "Bearer from-the-guest".to_owned();
    assert_eq!(b.authorizations(), [[guests_own]]);
    let operators = format!("Bearer {secret}");
    assert_eq!(
        a.authorizations(),
        [[operators.clone()], [operators]],
        "the credential went to its own destination only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_value_replaces_the_guests_and_stays_unseen() {
    let a = Server::start().await;
    let (secret, credential) = secret_for(a.port, "replace");
    let limits = limits(&[&a], vec![credential]);
    let (outcome, texts) = run(
        guests::FAULTY,
        &Mode::HttpFollow(a.url("/hello")).to_string(),
        limits.clone(),
    )
    .await;
    assert_eq!(outcome, Outcome::Success, "{texts:?}");
    // The guest read the whole response: status, every header, the body.
    assert!(
        texts[0].starts_with("200\n") && texts[0].ends_with("hello from loopback"),
        "{texts:?}"
    );
    assert_unseen(&secret, &outcome, &texts);
    assert_eq!(a.authorizations(), [[format!("Bearer {secret}")]]);
    // A request that fails after the credential was added: the error the
    // guest gets does not hold it either.
    let (outcome, texts) = run(
        guests::FAULTY,
        &Mode::HttpFollow(a.url("/drop")).to_string(),
        limits.clone(),
    )
    .await;
    assert_eq!(outcome, Outcome::Success, "{texts:?}");
    assert!(texts[0].starts_with("error: "), "{texts:?}");
    assert_unseen(&secret, &outcome, &texts);
    // Userinfo in the guest's authority: the `host` header the server
    // gets names the host and port checked, nothing else.
    let with_userinfo = format!("http://someone@127.0.0.1:{}/hello", a.port);
    let (outcome, texts) = run(
        guests::FAULTY,
        &Mode::HttpFollow(with_userinfo).to_string(),
        limits,
    )
    .await;
    assert_eq!(outcome, Outcome::Success, "{texts:?}");
    assert!(texts[0].starts_with("200\n"), "{texts:?}");
    assert_eq!(a.hosts(), vec![format!("127.0.0.1:{}", a.port); 3]);
    assert_eq!(a.authorizations()[2], [format!("Bearer {secret}")]);
}

/// `agent-host console` with `--credential` reading a variable, logging
/// at `trace`: the server gets the secret, and neither the process's
/// stdout (what the guest sent) nor its stderr (every log line) holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_never_prints_the_secret_even_at_trace() {
    let (a, b) = (Server::start().await, Server::start().await);
    let secret = format!("sk-cli-{}-{}", std::process::id(), a.port);
    let to_b = a.url(&format!("/redirect/{}", b.port));
    let mut command = tokio::process::Command::from(agent_host_command());
    command
        .args(["console", "--plugin", guests::FAULTY])
        .args(["--metadata", &Mode::HttpFollow(to_b).to_string()])
        .args(["--allow-http", &format!("127.0.0.1:{}", a.port)])
        .args(["--allow-http", &format!("127.0.0.1:{}", b.port)])
        .args([
            "--credential",
            &format!(
                "127.0.0.1:{}=Authorization: Bearer {{env:CRED_TEST_KEY}}",
                a.port
            ),
        ])
        .env("CRED_TEST_KEY", &secret)
        .env("RUST_LOG", EVERY_LOG_LINE)
        // Open until the guest reported: end of input would close the
        // room under it. (The console ends once input ends too.)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("starting agent-host console");
    let mut stdin = child.stdin.take();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut errors = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = errors.read_to_string(&mut text).await;
        text
    });
    let mut stdout = String::new();
    let status = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // The last report (the redirect's target) is in: end input.
            if line.contains("hello from loopback") {
                stdin.take();
            }
            stdout.push_str(&line);
            stdout.push('\n');
        }
        child.wait().await.unwrap()
    })
    .await
    .expect("the console ends in time");
    let stderr = stderr.await.unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("hello from loopback"), "{stdout}");
    // Trace logging was on: the request was logged, its secret was not.
    assert!(stderr.contains("outbound HTTP request"), "{stderr}");
    assert!(
        stderr.contains("replaced by the operator's credential"),
        "{stderr}"
    );
    assert!(!stdout.contains(&secret), "stdout holds the secret");
    assert!(!stderr.contains(&secret), "stderr holds the secret");
    assert_eq!(a.authorizations(), [[format!("Bearer {secret}")]]);
    assert_eq!(b.authorizations(), [["Bearer from-the-guest".to_owned()]]);
}

/// A credential that cannot be read stops the start, naming the variable;
/// one no rule reaches gets a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_credential_is_a_startup_error_and_an_unreachable_one_a_warning() {
    let console = |credential: &str, env: Option<&str>| {
        let mut command = tokio::process::Command::from(agent_host_command());
        command
            .args(["console", "--plugin", guests::ECHO])
            .args(["--allow-http", "api.example.com"])
            .args(["--credential", credential])
            .env_remove("CRED_TEST_MISSING")
            .stdin(std::process::Stdio::null());
        if let Some(value) = env {
            command.env("CRED_TEST_SET", value);
        }
        async move {
            tokio::time::timeout(Duration::from_secs(120), command.output())
                .await
                .expect("the console ends in time")
                .expect("running agent-host console")
        }
    };
    let out = console(
        "api.example.com=Authorization: Bearer {env:CRED_TEST_MISSING}",
        None,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("CRED_TEST_MISSING") && stderr.contains("not set"),
        "{stderr}"
    );
    let out = console(
        "api.example.org=Authorization: {env:CRED_TEST_SET}",
        Some("sk-unreachable-value"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("api.example.org:443") && stderr.contains("can never be sent"),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-unreachable-value"), "{stderr}");
}

/// `agent-host run` with a `[[credential]]` table reading a file, at
/// `RUST_LOG=trace`, serving a job dispatched by the fake server: the
/// destination gets the secret; no log line, and nothing the worker sent
/// the server (the job's status and failure reason among it), holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reads_credential_tables_and_tells_the_server_nothing() {
    let livekit = server().await;
    let a = Server::start().await;
    let secret = format!("sk-run-{}-{}", std::process::id(), a.port);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("openai-key");
    std::fs::write(&key, format!("{secret}\n")).unwrap();
    let config = dir.path().join("agent-host.toml");
    std::fs::write(
        &config,
        format!(
            "allow_http = [\"127.0.0.1:{port}\"]\n\n[[credential]]\ndestination = \"127.0.0.1:{port}\"\nheader = \"Authorization\"\nvalue = \"Bearer {{file:{key}}}\"\n",
            port = a.port,
            key = key.display()
        ),
    )
    .unwrap();
    let mut command = run_command(
        &livekit.url(),
        &livekit.config().api_key,
        &livekit.config().api_secret,
        &[
            "--config",
            config.to_str().unwrap(),
            "--plugin",
            guests::FAULTY,
            "--agent-name",
            "cred-agent",
        ],
    );
    command.env("RUST_LOG", EVERY_LOG_LINE);
    let mut host = Host::new(command.spawn().expect("starting agent-host run"));
    livekit.wait_for_workers(1, WAIT).await.unwrap();
    let id = dispatch(&livekit, "cred-agent", &Mode::HttpFollow(a.url("/hello")));
    // Without room I/O, the report to the room fails the job, after the
    // request.
    wait_worker_status(&livekit, &id, JobStatus::JsFailed).await;
    assert_eq!(a.authorizations(), [[format!("Bearer {secret}")]]);
    host.signal("TERM");
    assert_eq!(host.wait_exit(), Some(0));
    let mut logs = String::new();
    while let Ok(line) = host.logs.try_recv() {
        logs += &line.to_string();
    }
    assert!(logs.contains("outbound HTTP request"), "{logs}");
    assert!(!logs.contains(&secret), "a log line holds the secret");
    let sent = format!("{:?}", livekit.messages());
    assert!(
        sent.contains("JS_FAILED") || sent.contains("JsFailed"),
        "{sent}"
    );
    assert!(!sent.contains(&secret), "the server was told the secret");
}
