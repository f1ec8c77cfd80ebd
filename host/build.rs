//! Compiles the LiveKit FFI protocol subset (`proto/livekit_ffi.proto`)
//! into Rust types with `protox` (a pure-Rust protobuf compiler, so no
//! system `protoc`) and `prost-build`. The compiled descriptor set is kept
//! in `OUT_DIR` too: the schema check test compares it with the pinned
//! wheel's descriptors.
//!
//! It also sets `has_livekit_lib` when LiveKit's client library is
//! installed (or on CI), so the tests that need it are ignored, not passed,
//! without it (see `agent_host_capability`).

use std::path::PathBuf;

use prost::Message as _;

fn main() {
    agent_host_capability::build_script(&[agent_host_capability::Capability::LivekitLib]);
    let proto = "proto/livekit_ffi.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = match protox::compile([proto], ["proto"]) {
        Ok(fds) => fds,
        Err(err) => panic!("compiling {proto}: {err}"),
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("livekit_ffi_subset.bin"), fds.encode_to_vec())
        .expect("writing the descriptor set");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("generating the protocol types");
}
