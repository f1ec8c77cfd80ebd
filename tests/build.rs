//! Builds the example guests to wasm32-wasip2 components and hands their
//! paths to the tests as constants (`agent_host_tests::guests::ECHO`, ...),
//! the pattern of wasmtime's `crates/test-programs`.
//!
//! The guests are built by a nested cargo with its own target directory
//! (`target/guests`), so it never waits on the lock the outer cargo holds.
//!
//! It also sets the cfgs of what the room, CLI and conformance tests need
//! from the machine, so those tests are ignored, not passed, without it
//! (see `agent_host_capability`).

use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: &[&str] = &[
    "echo",
    "greeter",
    "faulty",
    "parrot",
    "legacy",
    "http-fetch",
    "assistant",
    "ws-client",
    "frontend",
    "voice",
    "prewarm",
    "prewarm-faulty",
];

fn main() {
    agent_host_capability::build_script(&agent_host_capability::Capability::ALL);
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in ["wit", "guest-sdk", "examples", "tests/guests"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let target_dir = root.join("target").join("guests");
    build(&root, &target_dir, GUESTS, None);
    // A second build of `faulty` that differs only in its flavor, for the
    // hot-swap tests.
    let flavor_b = root.join("target").join("guests-b");
    build(&root, &flavor_b, &["faulty"], Some("b"));

    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("guests.rs");
    let mut code = String::new();
    for guest in GUESTS {
        code += &constant(
            &guest.to_uppercase().replace('-', "_"),
            &wasm(&target_dir, guest),
        );
    }
    code += &constant("FAULTY_B", &wasm(&flavor_b, "faulty"));
    std::fs::write(out, code).unwrap();
}

fn wasm(target_dir: &Path, guest: &str) -> PathBuf {
    let wasm = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", guest.replace('-', "_")));
    assert!(wasm.is_file(), "{} was not built", wasm.display());
    wasm
}

/// Builds `guests` into `target_dir`, with `FAULTY_FLAVOR` set if given.
fn build(root: &Path, target_dir: &Path, guests: &[&str], flavor: Option<&str>) {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(target_dir);
    for guest in guests {
        cmd.args(["-p", guest]);
    }
    match flavor {
        Some(flavor) => cmd.env("FAULTY_FLAVOR", flavor),
        None => cmd.env_remove("FAULTY_FLAVOR"),
    };
    // Settings of the outer build must not leak into the guest build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || key == "RUSTFLAGS"
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_BUILD_")
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "CARGO_MAKEFLAGS"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd.status().expect("running cargo to build the guests");
    assert!(status.success(), "building the example guests failed");
}

fn constant(name: &str, wasm: &Path) -> String {
    format!(
        "/// Path of an example component.\npub const {name}: &str = {:?};\n",
        wasm.display().to_string()
    )
}
