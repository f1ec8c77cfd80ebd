//! Compiles the LiveKit FFI protocol subset (`proto/livekit_ffi.proto`)
//! into Rust types with `protox` (a pure-Rust protobuf compiler, so no
//! system `protoc`) and `prost-build`. The compiled descriptor set is kept
//! in `OUT_DIR` too: the schema check test compares it with the pinned
//! wheel's descriptors.

use std::path::PathBuf;

use prost::Message as _;

fn main() {
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
