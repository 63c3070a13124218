//! A guest's stdout and stderr, line by line into the host's log (a Rust
//! guest's panic message arrives here), and the rate limit its log lines
//! share with the `log` import.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line kept; the rest of an overlong line is dropped.
pub const MAX_LINE: usize = 4096;

/// How many lines one instance may log per second: its `log` calls, stdout
/// and stderr together. Past it, the rest of that second's lines are
/// dropped with one warning, so a guest printing in a loop cannot flood the
/// host's log (or slow the host down writing it).
pub struct LogLimit {
    handler: Arc<str>,
    per_second: u32,
    /// When the current second began, and the lines logged in it.
    window: Mutex<(Instant, u32)>,
}

impl LogLimit {
    pub fn new(handler: Arc<str>, per_second: u32) -> Arc<Self> {
        Arc::new(LogLimit { handler, per_second, window: Mutex::new((Instant::now(), 0)) })
    }

    /// Whether one more line may go to the log now.
    pub fn admit(&self) -> bool {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        if window.1 == self.per_second.saturating_add(1) {
            tracing::warn!(
                handler = %self.handler,
                "more than {} log lines in a second: the rest of this second's are dropped (raise the limit with `--max-log-lines-per-second`)",
                self.per_second
            );
        }
        window.1 <= self.per_second
    }
}

/// A guest output stream that writes complete lines to `tracing`.
#[derive(Clone)]
pub struct GuestLog {
    handler: Arc<str>,
    stream: &'static str,
    pending: Arc<Mutex<Vec<u8>>>,
    limit: Arc<LogLimit>,
}

impl GuestLog {
    pub fn new(handler: Arc<str>, stream: &'static str, limit: Arc<LogLimit>) -> Self {
        GuestLog { handler, stream, pending: Arc::default(), limit }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for &byte in bytes {
            if byte == b'\n' {
                self.emit(&pending);
                pending.clear();
            } else if pending.len() < MAX_LINE {
                pending.push(byte);
            }
        }
    }

    /// Logs a line; blank ones (a Rust panic message starts with one) say
    /// nothing and are left out.
    fn emit(&self, line: &[u8]) {
        if line.trim_ascii().is_empty() || !self.limit.admit() {
            return;
        }
        let line = String::from_utf8_lossy(line.trim_ascii_end());
        tracing::warn!(target: "ws_host::guest", handler = %self.handler, stream = %self.stream, "{line}");
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for GuestLog {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
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
