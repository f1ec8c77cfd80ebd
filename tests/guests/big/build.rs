//! Writes the guest's 40 MiB of initialised data: pseudo-random bytes
//! (xorshift64, fixed seed), so the build is reproducible and the data
//! segment can be neither zero-filled (`.bss`) nor folded away.

use std::path::PathBuf;

/// The size of a Python or JavaScript guest's component (interpreter plus
/// standard library), which issue 16 names as the target.
const SIZE: usize = 40 << 20;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("data.bin");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(SIZE);
    while data.len() < SIZE {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(out, data).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
