//! Operations: the health and admin server, and plugin watching.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Default address of the health server: every interface, so a container
/// platform's probes reach it.
pub const DEFAULT_HTTP_HOST: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Default port of the health server: 8081, the official workers' port.
pub const DEFAULT_HTTP_PORT: u16 = 8081;

/// Largest component the admin API accepts: 64 MiB, above the largest
/// plugin measured (40 MiB, README "Ahead-of-time plugins").
pub const MAX_UPLOAD: usize = 64 << 20;

/// Pause after a failed accept on the health server: 100 ms, so a full
/// file-descriptor table does not turn the accept loop into a busy loop.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Quiet period before a burst of file changes is reported: 300 ms, long
/// enough for an editor's save or a cargo build to finish writing.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(300);
