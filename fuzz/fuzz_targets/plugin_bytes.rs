//! Any bytes offered as a plugin: loading refuses them with an error or
//! accepts a valid component, and never panics.
#![no_main]

use std::sync::OnceLock;

use agent_host::{Runtime, RuntimeConfig};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            max_jobs: 4,
            cache_dir: None,
            ..RuntimeConfig::default()
        })
        .expect("creating the runtime")
    })
}

fuzz_target!(|bytes: &[u8]| {
    let _ = runtime().load_plugin(bytes);
});
