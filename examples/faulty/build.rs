//! Generates `huge_name.rs`: a function whose name is 256 KiB long, for the
//! `huge-name:<how>` modes. The name lands in the component's name section,
//! which is where wasmtime's backtraces take frame names from; the host
//! must keep it out of failure reasons and cut it in its logs.

use std::path::PathBuf;

/// Length of the generated name: 256 KiB, as in the attack of issue 11.
const NAME_BYTES: usize = 256 << 10;

fn main() {
    let name = format!("huge_name_{}", "x".repeat(NAME_BYTES));
    let code = format!(
        "/// Calls `fail` from `depth + 1` nested frames named with {NAME_BYTES}\n\
         /// bytes each; none is a tail call, so all are on the stack when `fail`\n\
         /// fails.\n\
         #[inline(never)]\n\
         pub fn {name}(depth: u32, fail: &dyn Fn() -> u64) -> u64 {{\n\
             let below = if depth == 0 {{ fail() }} else {{ {name}(std::hint::black_box(depth - 1), fail) }};\n\
             std::hint::black_box(below).wrapping_add(1)\n\
         }}\n\
         pub use self::{name} as through_huge_name;\n"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("huge_name.rs"), code).expect("writing huge_name.rs");
    println!("cargo:rerun-if-changed=build.rs");
}
