//! `agent-host:agent/log`: guest log lines into the host's `tracing` log,
//! inside the job's span (so each carries the job id), cut to the log line
//! limit with a visible marker.
//!
//! [`LogView`] holds nothing: the job's log is the span its calls run in
//! (`runtime::job` runs every guest call inside it), so this import can
//! reach no state of the job, the host or another job.

use wasmtime::component::HasData;

use crate::bindings::agent_host::agent::log::{Host, Level};
use crate::bounded;

/// What the `log` import reaches: nothing but the log it writes to.
pub(crate) struct LogView;

/// [`HasData`] for the `log` import, whose data is a [`LogView`].
pub(crate) struct LogData;

impl HasData for LogData {
    type Data<'a> = LogView;
}

impl Host for LogView {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message = bounded::log_line(&message);
        match level {
            Level::Trace => tracing::trace!(target: "agent_host::guest", "{message}"),
            Level::Debug => tracing::debug!(target: "agent_host::guest", "{message}"),
            Level::Info => tracing::info!(target: "agent_host::guest", "{message}"),
            Level::Warn => tracing::warn!(target: "agent_host::guest", "{message}"),
            Level::Error => tracing::error!(target: "agent_host::guest", "{message}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::job::MAX_LOG_LINE;

    /// Where the test's subscriber writes: one buffer, shared.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_line_is_bounded_and_stays_in_the_jobs_span() -> wasmtime::Result<()> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let span = tracing::error_span!("job", job_id = %"AJ_log");
        let _inside = span.enter();
        LogView.log(Level::Warn, "é".repeat(1 << 20)).await?;
        LogView.log(Level::Debug, "short line".into()).await?;
        let text = String::from_utf8(captured.0.lock().unwrap().clone())?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line each: {text:.200}");
        let (long, short) = (lines[0], lines[1]);
        // The message within the cap, the job's span and level around it.
        assert!(long.len() <= MAX_LOG_LINE + 200, "{}", long.len());
        assert!(long.contains("… [truncated "), "{}", long.len());
        assert!(
            long.contains("WARN") && long.contains("job{job_id=AJ_log}"),
            "{long:.120}"
        );
        assert!(
            short.contains("DEBUG") && short.ends_with("short line"),
            "{short}"
        );
        Ok(())
    }
}
