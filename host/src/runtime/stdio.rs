//! A guest's stdout and stderr, routed line by line into the host's log.
//!
//! Policy: a guest's output never reaches the host's own stdout (which the
//! console uses for the conversation) and never blocks: lines go to
//! `tracing` at `info` (stdout) or `warn` (stderr) inside the job's span, so
//! they carry the job id. Lines longer than [`MAX_LOG_LINE`] are cut, with a
//! `… [truncated N bytes]` marker: the host buffers at most that much of a
//! line, however long the guest makes it. Control characters inside a line
//! (a carriage return, an escape sequence) are written out
//! ([`bounded::visible`](crate::bounded::visible)): one guest line is one
//! log line, and reaches a terminal as text. The last lines of stderr (each
//! within the same bound) are kept so a guest panic message can become the
//! job's failure reason.
//! What a stream buffers (its partial line and kept tail, at most 17
//! lines of [`MAX_LOG_LINE`]) is charged to the job's host-memory budget.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::bounded;
use crate::config::job::{MAX_LOG_LINE, STDERR_TAIL_LINES};
use crate::host_memory::{Charge, HostMemory, MemoryKind};

/// Which of the guest's two output streams a [`GuestOutput`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdio {
    Stdout,
    Stderr,
}

/// One of a job's output streams. Clones share the line buffer.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    stream: Stdio,
    inner: Arc<Mutex<LineBuffer>>,
}

struct LineBuffer {
    /// The start of the current line, at most [`MAX_LOG_LINE`] bytes.
    partial: Vec<u8>,
    /// Bytes of the current line beyond `partial`, dropped.
    dropped: usize,
    tail: VecDeque<String>,
    /// What `partial` and `tail` hold, in the job's budget.
    charge: Charge,
}

impl LineBuffer {
    /// Resizes the charge to what is buffered now. A refusal is recorded in
    /// the budget, which ends the job; the buffer stays bounded regardless.
    fn recharge(&mut self) {
        let held = self.partial.capacity() + self.tail.iter().map(String::capacity).sum::<usize>();
        let _ = self.charge.resize(held as u64);
    }

    /// The current line, bounded, and a fresh buffer for the next.
    fn take_line(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.partial);
        let trimmed = text.trim_end();
        let line = bounded::visible(trimmed);
        // What was dropped before the host saw it counts as left out, as
        // whatever the escapes added to what it kept.
        let total = line.len() + (self.partial.len() - trimmed.len()) + self.dropped;
        let line = bounded::cut_prefix(&line, total, MAX_LOG_LINE);
        self.partial.clear();
        self.dropped = 0;
        line
    }
}

impl GuestOutput {
    pub(crate) fn new(stream: Stdio, memory: &HostMemory) -> Self {
        Self {
            stream,
            inner: Arc::new(Mutex::new(LineBuffer {
                partial: Vec::new(),
                dropped: 0,
                tail: VecDeque::new(),
                charge: memory.empty(MemoryKind::Stdio),
            })),
        }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let line = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            let room = MAX_LOG_LINE - buf.partial.len();
            let kept = line.len().min(room);
            buf.partial.extend_from_slice(&line[..kept]);
            buf.dropped += line.len() - kept;
            if chunk.ends_with(b"\n") {
                let line = buf.take_line();
                self.emit(&mut buf, line);
            }
        }
        buf.recharge();
    }

    fn emit(&self, buf: &mut LineBuffer, line: String) {
        match self.stream {
            Stdio::Stdout => {
                tracing::info!(target: "agent_host::guest", stream = "stdout", "{line}")
            }
            Stdio::Stderr => {
                tracing::warn!(target: "agent_host::guest", stream = "stderr", "{line}");
                if buf.tail.len() == STDERR_TAIL_LINES {
                    buf.tail.pop_front();
                }
                buf.tail.push_back(line);
            }
        }
    }

    /// Emits a pending partial line, if any.
    pub(crate) fn flush_partial(&self) {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !buf.partial.is_empty() {
            let line = buf.take_line();
            self.emit(&mut buf, line);
            buf.recharge();
        }
    }

    /// The message of the last Rust panic printed on this stream, if any.
    pub(crate) fn panic_message(&self) -> Option<String> {
        let buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<&str> = buf.tail.iter().map(String::as_str).collect();
        panic_message(&lines)
    }
}

/// Finds the message of the last Rust panic in stderr lines: the lines after
/// `thread '...' panicked at file:line:col:` up to the `note:` line.
fn panic_message(lines: &[&str]) -> Option<String> {
    let start = lines.iter().rposition(|l| l.contains(" panicked at "))?;
    let message: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with("note: "))
        .copied()
        .collect();
    let message = message.join("\n");
    if message.is_empty() {
        // Older format: `panicked at 'message', file:line:col`.
        Some(lines[start].split(" panicked at ").nth(1)?.to_string())
    } else {
        Some(message)
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_panic_message() {
        let lines = [
            "",
            "thread '<unnamed>' panicked at src/lib.rs:10:5:",
            "faulty: asked to panic",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ];
        assert_eq!(
            panic_message(&lines).as_deref(),
            Some("faulty: asked to panic")
        );
        assert_eq!(panic_message(&["just a log line"]), None);
    }

    #[test]
    fn splits_lines_and_keeps_stderr_tail() {
        let out = GuestOutput::new(Stdio::Stderr, &HostMemory::new(1 << 20));
        out.write_bytes(b"thread 'main' panicked at a.rs:1:1:\nbo");
        out.write_bytes(b"om\n");
        assert_eq!(out.panic_message().as_deref(), Some("boom"));
    }

    #[test]
    fn control_characters_in_a_line_are_written_out() {
        let out = GuestOutput::new(Stdio::Stderr, &HostMemory::new(1 << 20));
        out.write_bytes(b"progress 10%\rprogress 99%\x1b[2K done\n");
        let buf = out.inner.lock().unwrap();
        let lines: Vec<&String> = buf.tail.iter().collect();
        assert_eq!(
            lines,
            ["progress 10%\\rprogress 99%\\u{1b}[2K done"],
            "one guest line, one visible log line"
        );
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let out = GuestOutput::new(Stdio::Stderr, &HostMemory::new(1 << 20));
        // One line of 1 MiB in many writes, the way a guest floods it.
        let chunk = "é".repeat(1000);
        for _ in 0..(1 << 20) / chunk.len() {
            out.write_bytes(chunk.as_bytes());
        }
        out.write_bytes(b"\nnext\n");
        let buf = out.inner.lock().unwrap();
        let lines: Vec<&String> = buf.tail.iter().collect();
        assert_eq!(
            lines.len(),
            2,
            "{:?}",
            lines.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert!(lines[0].len() <= MAX_LOG_LINE, "{}", lines[0].len());
        assert!(lines[0].starts_with("éé"));
        assert!(
            lines[0].contains("… [truncated "),
            "{}",
            &lines[0][lines[0].len() - 40..]
        );
        assert_eq!(lines[1], "next");
        assert!(buf.partial.capacity() <= 2 * MAX_LOG_LINE);
    }
}
