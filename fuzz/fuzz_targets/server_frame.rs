//! Any bytes the server may send as a frame: the worker decodes them or
//! skips them, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = agent_host::worker::decode_server_frame(bytes);
});
