//! Progress while a plugin loads: compiling a large component (an
//! interpreter built by componentize-py or componentize-js) takes seconds
//! the first time, and silence would look like a hang.
//!
//! Policy: nothing for a load under [`QUIET_FOR`] (a cached or small
//! plugin); after that, on a terminal, one line rewritten in place with the
//! elapsed time, and elsewhere (logs, pipes) one line when it starts to take
//! long and one when it is done. Everything goes to stderr, so stdout
//! (`check`'s report, `console`'s room) stays as it was.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Loads quicker than this print nothing: 1 s, longer than reading any
/// plugin from the compile cache, shorter than compiling an interpreter.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// How often the terminal line is redrawn.
const TICK: Duration = Duration::from_millis(250);

/// Runs `load` (loading the plugin at `path`) and shows its progress on
/// stderr when it takes longer than [`QUIET_FOR`].
pub fn loading<T>(path: &Path, load: impl FnOnce() -> T) -> T {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let name = path.display().to_string();
    let started = Instant::now();
    let shower = thread::Builder::new()
        .name("agent-host-progress".into())
        .spawn(move || show(&name, started, &done_rx))
        .ok();
    let result = load();
    drop(done_tx);
    if let Some(shower) = shower {
        let _ = shower.join();
    }
    result
}

fn show(name: &str, started: Instant, done: &mpsc::Receiver<()>) {
    if done.recv_timeout(QUIET_FOR) != Err(mpsc::RecvTimeoutError::Timeout) {
        return;
    }
    let tty = std::io::stderr().is_terminal();
    let mut stderr = std::io::stderr();
    if !tty {
        let _ = writeln!(stderr, "compiling {name} ...");
    }
    while done.recv_timeout(TICK) == Err(mpsc::RecvTimeoutError::Timeout) {
        if tty {
            let _ = write!(
                stderr,
                "\rcompiling {name} ... {:.0}s",
                started.elapsed().as_secs_f64()
            );
            let _ = stderr.flush();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if tty {
        let _ = writeln!(stderr, "\rcompiled {name} in {elapsed:.1}s      ");
    } else {
        let _ = writeln!(stderr, "compiled {name} in {elapsed:.1}s");
    }
}
