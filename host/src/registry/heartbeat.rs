//! Pings: every round, the registry pings each of its clients and lets go
//! of those that sent nothing since the previous round, not even the pong
//! (a peer gone without a word, or cut off by a proxy). The pings also keep
//! proxies that close quiet connections (nginx and most load balancers
//! after 60 s) from closing clients that just listen.
//!
//! One thread per registry rather than a timer per connection: an idle
//! connection pays for one flag ([`super::Control::heard`]). A thread, not a
//! tokio task: a timer always registered with the runtime made each of its
//! parks compute the next expiration, ~700 instructions per echo at one
//! connection (callgrind). TCP keepalive (standalone listener) stays as the
//! fallback with pings off; with them on, a connection is never silent long
//! enough for it to probe.

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::Registry;

/// Close code and reason for a client that did not answer a ping within a
/// round.
pub const CLOSE_SILENT: (u16, &str) = (1001, "No answer to pings");

/// Readers of the registry's handler waiting for room in its event queue
/// (back-pressure). A waiting reader reads nothing, pongs included, so no
/// round closes anyone while one waits, nor in the round after: a silent
/// client is then told from one that was not read.
#[derive(Debug, Default)]
pub(super) struct HeldBack {
    now: AtomicUsize,
    lately: AtomicBool,
}

/// A reader held back, until dropped.
pub(super) struct HoldingBack<'a>(&'a HeldBack);

impl HeldBack {
    pub(super) fn start(&self) -> HoldingBack<'_> {
        self.now.fetch_add(1, Ordering::Relaxed);
        self.lately.store(true, Ordering::Relaxed);
        HoldingBack(self)
    }

    /// Whether this round may close silent clients; starts the next period.
    pub(super) fn may_close(&self) -> bool {
        let lately = self.lately.swap(false, Ordering::Relaxed);
        !lately && self.now.load(Ordering::Relaxed) == 0
    }
}

impl Drop for HoldingBack<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::Relaxed);
        self.0.lately.store(true, Ordering::Relaxed);
    }
}

/// Starts the rounds, every `every` while the registry lives.
pub(super) fn start(registry: Weak<Registry>, every: Duration) {
    let rounds = move || {
        loop {
            // Each round a full `every` after the last one ended: a client
            // always gets that long to answer.
            std::thread::sleep(every);
            match registry.upgrade() {
                Some(registry) => registry.ping_round(),
                None => return,
            }
        }
    };
    if let Err(error) = std::thread::Builder::new().name("ws-host-pings".into()).spawn(rounds) {
        tracing::warn!("cannot start the thread that pings clients, so none are pinged: {error}");
    }
}
