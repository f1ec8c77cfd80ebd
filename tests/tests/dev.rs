//! `agent-host dev`: editing a guest crate rebuilds and hot-swaps it; a
//! build that fails shows the compiler's errors and the running version
//! keeps serving.

use std::path::Path;
use std::process::Stdio;

use agent_host_tests::process::Host;
use agent_host_tests::worker::{self, WAIT, flavor_of_next_job};
use agent_host_tests::{agent_host_for_fake_server, workspace_root};

/// A standalone copy of the `faulty` example in `dir` (its own workspace,
/// the SDK and the modes crate by absolute path), so the test can edit it. It gets its own
/// package name: builds share a target directory with the fixtures, and
/// its component must not overwrite theirs.
fn copy_faulty(dir: &Path) {
    let root = workspace_root();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    // Every source file and the build script that generates the rest.
    for entry in std::fs::read_dir(root.join("examples/faulty/src")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("src").join(path.file_name().unwrap())).unwrap();
    }
    std::fs::copy(root.join("examples/faulty/build.rs"), dir.join("build.rs")).unwrap();
    // The real crate's dependencies, with the SDK's relative path made
    // absolute and workspace dependencies spelled out as the workspace
    // pins them: the copy builds wherever it is.
    let manifest = std::fs::read_to_string(root.join("examples/faulty/Cargo.toml")).unwrap();
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let dependencies = manifest
        .split_once("[dependencies]")
        .expect("faulty has dependencies")
        .1
        .lines()
        .map(|line| match line.strip_suffix(".workspace = true") {
            Some(name) => workspace
                .lines()
                .find(|l| l.starts_with(&format!("{name} = ")))
                .expect("a workspace dependency is pinned in the root manifest")
                .to_owned(),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "path = \"../../guest-sdk\"",
            &format!("path = {:?}", root.join("guest-sdk").display().to_string()),
        )
        .replace(
            "path = \"mode\"",
            &format!(
                "path = {:?}",
                root.join("examples/faulty/mode").display().to_string()
            ),
        );
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "faulty-dev-copy"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[profile.release]
lto = true
codegen-units = 1
strip = "debuginfo"

[workspace]

[dependencies]
{dependencies}"#
        ),
    )
    .unwrap();
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from} not in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_crate_rebuilds_and_swaps() {
    let server = worker::server().await;
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("faulty");
    copy_faulty(&crate_dir);

    let child = agent_host_for_fake_server()
        .args([
            "--log-format",
            "json",
            "dev",
            "--plugin",
            crate_dir.to_str().unwrap(),
        ])
        .args([
            "--url",
            &server.url(),
            "--api-key",
            &server.config().api_key,
        ])
        .args([
            "--api-secret",
            &server.config().api_secret,
            "--agent-name",
            "dev-agent",
        ])
        // Share compiled dependencies with the other guest builds.
        .env("CARGO_TARGET_DIR", workspace_root().join("target/guests"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let host = Host::new(child);
    host.wait_log("watching for changes");
    server.wait_for_workers(1, WAIT).await.unwrap();
    assert_eq!(flavor_of_next_job(&server, "dev-agent").await, "a");

    let lib = crate_dir.join("src/lib.rs");
    edit(&lib, r#"None => "a","#, r#"None => "edited","#);
    host.wait_log("plugin swapped: new jobs run the new version, running jobs keep theirs");
    assert_eq!(flavor_of_next_job(&server, "dev-agent").await, "edited");

    edit(&lib, "struct Faulty;", "struct Faulty oops;");
    let failure = host.wait_log("reload failed; the current version keeps serving");
    assert!(
        failure["error"].as_str().unwrap().contains("failed"),
        "{failure}"
    );
    let compiler_said = host.raw_lines().join("\n");
    assert!(
        compiler_said.contains("error"),
        "the compiler's errors are shown: {compiler_said}"
    );
    assert_eq!(flavor_of_next_job(&server, "dev-agent").await, "edited");
    assert_eq!(server.workers().len(), 1, "stayed registered throughout");
}
