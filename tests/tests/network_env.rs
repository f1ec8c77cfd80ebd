//! The worker on the networks it meets in production: control frames from
//! proxies before the register response, LiveKit Cloud's worker token, a
//! private CA in front of the server, and a company's `CONNECT` proxy for
//! the worker connection, the server API and guest HTTP (with `NO_PROXY`).
//!
//! Everything runs on loopback: the fake LiveKit server, a TLS terminator
//! with a CA minted for the test (`agent_host_tests::tls`), a recording
//! `CONNECT` proxy (`agent_host_tests::proxy::ConnectProxy`) and a second
//! fake server as the destination of guest requests.

use std::process::Command;
use std::sync::atomic::Ordering;

use agent_host::net::{Network, NetworkConfig, ProxyConfig};
use agent_host::room::sim::SimRooms;
use agent_host::{HttpAllowList, JobLimits, Outcome};
use agent_host_tests::process::{Host, run_command};
use agent_host_tests::proxy::ConnectProxy;
use agent_host_tests::tls::TlsTerminator;
use agent_host_tests::worker::{WAIT, options, server, start_worker, wait_worker_status};
use agent_host_tests::{guests, load, request, run_job, runtime};
use fake_livekit::livekit_protocol::JobStatus;
use fake_livekit::{ControlFrame, Direction, DispatchRequest, FakeLiveKit};
use faulty_mode::Mode;

/// Every variable that changes how agent-host connects, so that the test
/// machine's own settings do not leak into a test.
const NETWORK_VARS: [&str; 9] = [
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "LIVEKIT_WORKER_TOKEN",
];

/// `agent-host run` against `url` with the fake's credentials, none of the
/// test machine's network variables, and `env` set.
fn host(server: &FakeLiveKit, url: &str, env: &[(&str, &str)], extra: &[&str]) -> Host {
    let mut command: Command = run_command(
        url,
        &server.config().api_key,
        &server.config().api_secret,
        extra,
    );
    for var in NETWORK_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    Host::new(command.spawn().expect("starting agent-host run"))
}

/// The `worker_token` of every connection the server accepted, in order.
fn worker_tokens(server: &FakeLiveKit) -> Vec<Option<String>> {
    server
        .messages()
        .into_iter()
        .filter_map(|m| match m.dir {
            Direction::Connected { worker_token, .. } => Some(worker_token),
            _ => None,
        })
        .collect()
}

/// All a host said on stderr until now, JSON lines and plain ones.
fn said(host: &Host) -> String {
    let mut text = String::new();
    while let Ok(line) = host.logs.try_recv() {
        text += &line.to_string();
        text.push('\n');
    }
    text
}

/// A destination for guest requests: a second fake server, which answers
/// `GET /hello` with 404 (any answer will do); how many requests it got.
async fn web_server() -> FakeLiveKit {
    server().await
}

fn hits(web: &FakeLiveKit) -> usize {
    web.messages()
        .iter()
        .filter(|m| matches!(&m.dir, Direction::Rejected { path, .. } if path == "/hello"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_frames_before_the_register_response_are_not_the_first_message() {
    let server = server().await;
    // As a proxy or load balancer may: a ping and an unsolicited pong right
    // after the upgrade, before the server has even read `register`.
    server.set_upgrade_frames(vec![
        ControlFrame::Ping,
        ControlFrame::Pong,
        ControlFrame::Ping,
    ]);
    let worker = start_worker(options(&server, "pinged", 4));
    server.wait_for_workers(1, WAIT).await.unwrap();
    // And at any moment later.
    assert_eq!(server.send_control(ControlFrame::Ping), 1);
    assert_eq!(server.send_control(ControlFrame::Pong), 1);
    let id = agent_host_tests::worker::dispatch(&server, "pinged", &Mode::Sleep(10));
    wait_worker_status(&server, &id, JobStatus::JsSuccess).await;
    // Registered on the first attempt and never reconnected.
    assert_eq!(worker_tokens(&server).len(), 1, "{:?}", server.messages());
    assert_eq!(server.workers().len(), 1);
    assert_eq!(
        worker.handle.metrics().reconnects.load(Ordering::Relaxed),
        0
    );
    worker.handle.stop();
    worker.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_token_goes_in_the_worker_token_query_parameter() {
    let server = server().await;
    // In process, a token that needs encoding.
    let token = "cloud tok+/=&x";
    let mut opts = options(&server, "cloud", 2);
    opts.worker_token = Some(token.into());
    let worker = start_worker(opts);
    server.wait_for_workers(1, WAIT).await.unwrap();
    worker.handle.stop();
    worker.task.await.unwrap().unwrap();
    assert_eq!(worker_tokens(&server), [Some(token.to_string())]);

    // The CLI takes it from LIVEKIT_WORKER_TOKEN; without it, none is sent.
    let with = host(
        &server,
        &server.url(),
        &[("LIVEKIT_WORKER_TOKEN", "from-the-env")],
        &["--plugin", guests::FAULTY],
    );
    wait_connections(&server, 2).await;
    drop(with);
    let _without = host(&server, &server.url(), &[], &["--plugin", guests::FAULTY]);
    wait_connections(&server, 3).await;
    assert_eq!(
        worker_tokens(&server)[1..],
        [Some("from-the-env".to_string()), None]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_the_server_would_refuse_ends_the_worker_before_it_connects() {
    let server = server().await;
    let mut opts = options(&server, "deployed", 2);
    opts.deployment = "prod_eu".into();
    let worker = start_worker(opts);
    let err = tokio::time::timeout(WAIT, worker.task)
        .await
        .expect("the worker ends at once")
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string().contains("`_` (at byte 4) is reserved"),
        "{err}"
    );
    // The fake server, like the real one, would have closed the connection
    // without a reason; the worker never tried.
    assert!(worker_tokens(&server).is_empty());
    assert!(!fake_livekit::validate_deployment("prod_eu"));
}

/// Waits until the server accepted `n` WebSocket connections in all.
async fn wait_connections(server: &FakeLiveKit, n: usize) {
    let mut from = 0;
    for _ in 0..n {
        let (at, _) = server
            .wait_for_message(from, WAIT, "a WebSocket connection", |m| {
                matches!(m.dir, Direction::Connected { .. })
            })
            .await
            .unwrap();
        from = at + 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_through_ca_file_ssl_cert_file_or_ssl_cert_dir_and_refused_without()
{
    let server = server().await;
    let tls = TlsTerminator::start(server.addr()).await;
    let ca = tls.ca_file().to_str().unwrap();
    let plugin = ["--plugin", guests::FAULTY];

    // --ca-file.
    let with_flag = host(
        &server,
        &tls.url(),
        &[],
        &[&plugin[..], &["--ca-file", ca]].concat(),
    );
    wait_connections(&server, 1).await;
    with_flag.wait_log("registered with LiveKit");
    drop(with_flag);

    // SSL_CERT_FILE, and through a company proxy (HTTPS_PROXY for wss://):
    // TLS is end to end, the proxy sees only the CONNECT.
    let proxy = ConnectProxy::start().await;
    let with_env = host(
        &server,
        &tls.url(),
        &[("SSL_CERT_FILE", ca), ("HTTPS_PROXY", &proxy.url())],
        &plugin,
    );
    wait_connections(&server, 2).await;
    with_env.wait_log("registered with LiveKit");
    assert_eq!(proxy.targets(), [tls.url().trim_start_matches("wss://")]);
    drop(with_env);

    // SSL_CERT_DIR: the directory holding the CA file.
    let dir = tls.ca_file().parent().unwrap().to_str().unwrap();
    let with_dir = host(&server, &tls.url(), &[("SSL_CERT_DIR", dir)], &plugin);
    wait_connections(&server, 3).await;
    with_dir.wait_log("registered with LiveKit");
    drop(with_dir);

    // None of them: a clear error, no registration.
    let mut without = host(
        &server,
        &tls.url(),
        &[],
        &[&plugin[..], &["--max-retries", "0"]].concat(),
    );
    assert_eq!(without.wait_exit(), Some(1));
    let text = said(&without);
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(
        text.contains("not signed by a CA this host trusts")
            && text.contains("--ca-file")
            && text.contains("SSL_CERT_FILE"),
        "{text}"
    );
    assert_eq!(server.workers().len(), 3);

    // A CA file that is not one fails at start, naming it.
    let mut bad = host(
        &server,
        &tls.url(),
        &[("SSL_CERT_FILE", "/does/not/exist.pem")],
        &plugin,
    );
    assert_eq!(bad.wait_exit(), Some(2));
    let text = said(&bad);
    assert!(text.contains("/does/not/exist.pem"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_the_server_api_and_guest_http_go_through_the_proxy_and_no_proxy_bypasses_it() {
    let server = server().await;
    let web_server = web_server().await;
    let web_port = web_server.addr().port();
    let proxy = ConnectProxy::start().await;
    let fake = server.addr().to_string();
    let web = format!("127.0.0.1:{web_port}");
    let allow = format!("127.0.0.1:{web_port}");
    let flags = [
        "--plugin",
        &format!("admin={}", guests::FAULTY),
        "--plugin",
        &format!("fetch={}", guests::HTTP_FETCH),
        "--allow-http",
        &allow,
    ]
    .map(str::to_owned);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    // Run both agents once: a server API job and a guest HTTP job.
    async fn one_round(server: &FakeLiveKit, web: &str) {
        let mut req = DispatchRequest::new(format!("room-{}", server.jobs().len()), "admin");
        req.metadata = Mode::Server("alice".to_owned()).to_string();
        let admin = server.dispatch(req);
        let mut req = DispatchRequest::new(format!("room-{}", server.jobs().len()), "fetch");
        req.metadata = format!("http://{web}/hello");
        let fetch = server.dispatch(req);
        // Without room I/O both report a failure at the end (their report to
        // the room cannot be sent); what counts is what went out before.
        for id in [&admin, &fetch] {
            wait_worker_status(server, id, JobStatus::JsFailed).await;
        }
    }

    let through = host(
        &server,
        &server.url(),
        &[("HTTP_PROXY", &proxy.url())],
        &flags,
    );
    server.wait_for_workers(2, WAIT).await.unwrap();
    one_round(&server, &web).await;
    let targets = proxy.targets();
    // Two worker connections, four server API calls, one guest request.
    assert_eq!(
        targets.iter().filter(|t| **t == fake).count(),
        6,
        "{targets:?}"
    );
    assert_eq!(
        targets.iter().filter(|t| **t == web).count(),
        1,
        "{targets:?}"
    );
    assert_eq!(targets.len(), 7, "{targets:?}");
    assert_eq!(server.twirp_calls().len(), 4);
    assert_eq!(hits(&web_server), 1);
    drop(through);

    // NO_PROXY names the destinations: all of it goes direct.
    let direct = host(
        &server,
        &server.url(),
        &[("http_proxy", &proxy.url()), ("no_proxy", "127.0.0.1")],
        &flags,
    );
    wait_connections(&server, 4).await;
    direct.wait_log("registered with LiveKit");
    direct.wait_log("registered with LiveKit");
    one_round(&server, &web).await;
    assert_eq!(proxy.targets().len(), 7, "{:?}", proxy.targets());
    assert_eq!(server.twirp_calls().len(), 8);
    assert_eq!(hits(&web_server), 2);
}

/// Guest HTTP through a proxy, which resolves names itself: the allow-list
/// still decides which names and ports, and an address is still checked;
/// a name that resolves to a private address is the proxy's to refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_proxy_the_allow_list_still_applies() {
    let web = web_server().await;
    let port = web.addr().port();
    let proxy = ConnectProxy::start().await;
    let network = Network::new(NetworkConfig {
        proxy: ProxyConfig {
            http: Some(proxy.url().parse().unwrap()),
            ..ProxyConfig::default()
        },
        ..NetworkConfig::default()
    })
    .unwrap();
    let limits = |rules: &[String]| JobLimits {
        http_allow: HttpAllowList::parse(rules, false).unwrap(),
        network: network.clone(),
        ..JobLimits::default()
    };
    let runtime = runtime(2);
    let plugin = load(&runtime, guests::HTTP_FETCH);
    let rooms = SimRooms::default();
    let fetch = |id: &str, url: String, limits: JobLimits| {
        run_job(&runtime, &plugin, &rooms, request(id, &url), limits)
    };

    // An address allowed only by name (`*`) is still refused as loopback,
    // before the proxy is asked.
    let outcome = fetch(
        "AJ_proxy_ip",
        format!("http://127.0.0.1:{port}/hello"),
        limits(&["*".into()]),
    )
    .await;
    assert!(
        matches!(&outcome, Outcome::Failed(r) if r.contains("DestinationIpProhibited")),
        "{outcome:?}"
    );
    // A name not on the list never reaches the proxy.
    let outcome = fetch(
        "AJ_proxy_denied",
        format!("http://localhost:{port}/hello"),
        limits(&["example.com".into()]),
    )
    .await;
    assert!(
        matches!(&outcome, Outcome::Failed(r) if r.contains("HttpRequestDenied")),
        "{outcome:?}"
    );
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
    // An allowed name goes to the proxy, which resolves it (here to
    // loopback, which the host cannot see).
    let outcome = fetch(
        "AJ_proxy_name",
        format!("http://localhost:{port}/hello"),
        limits(&[format!("localhost:{port}")]),
    )
    .await;
    assert_eq!(outcome, Outcome::Success);
    assert_eq!(proxy.targets(), [format!("localhost:{port}")]);
    assert_eq!(hits(&web), 1);
}
