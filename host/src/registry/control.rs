//! What a connection and the registry share: a request to close it (with
//! the close frames a server may send), whether its peer was heard from
//! since the last ping, and its places in the handler's event queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::Registry;

/// The longest close reason a close frame carries (a control frame's 125
/// bytes, less the code); a longer one is cut at a character boundary.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Whether a server may send `code` in a close frame (RFC 6455 7.4: not
/// 1004-1006, 1015, unassigned or out-of-range codes).
pub fn close_code_allowed(code: u16) -> bool {
    CloseCode::from(code).is_allowed()
}

/// A connection's shared state: the request to close it (raised by anyone:
/// the handler, the registry, the reader; seen by both halves of the
/// connection), whether the reader heard from the peer since the registry's
/// last ping round (the `heartbeat` module), and the places its events may
/// still take in the handler's queue ([`Place`]).
#[derive(Debug)]
pub struct Control {
    state: watch::Sender<Option<(u16, String)>>,
    heard: AtomicBool,
    places: Semaphore,
}

/// One of a client's places in its handler's event queue, held by a queued
/// event until the handler takes it. A client gets a few (32 by default,
/// `event-queue-per-client`): one that sends faster than the handler
/// answers waits for its own places, and the others' events go in ahead
/// rather than behind its pile (beside a flood, the others' p99 was ~10x
/// their own alone, ~4x with places: BENCHMARKS.md).
#[derive(Debug)]
pub struct Place(Arc<Control>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.places.add_permits(1);
    }
}

impl Control {
    /// A connection whose events may hold `places` places in the queue.
    pub fn new(places: usize) -> Control {
        let places = places.clamp(1, Semaphore::MAX_PERMITS);
        // A new connection counts as heard: the first round pings it.
        Control { state: watch::Sender::new(None), heard: AtomicBool::new(true), places: Semaphore::new(places) }
    }

    /// A place for one more event of this client, waiting while all of
    /// them are held (a wait the registry's pings are told of).
    pub async fn place(self: &Arc<Self>, registry: &Registry) -> Place {
        match self.places.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => registry.wait_for_room(self.places.acquire()).await.expect("never closed").forget(),
        }
        Place(self.clone())
    }

    /// The reader got something from the peer (a message, a pong).
    pub fn heard(&self) {
        self.heard.store(true, Ordering::Relaxed);
    }

    /// Whether the peer was heard from since the last call; clears it.
    pub(super) fn take_heard(&self) -> bool {
        self.heard.swap(false, Ordering::Relaxed)
    }

    /// Asks for the connection to close; the first request wins. A code a
    /// server may not send becomes 1011 (with a warning), and the reason is
    /// cut to what a close frame holds: the peer gets a valid close either way.
    pub fn request(&self, code: u16, reason: impl Into<String>) {
        let mut reason = reason.into();
        reason.truncate(reason.floor_char_boundary(MAX_CLOSE_REASON_BYTES));
        let code = if close_code_allowed(code) {
            code
        } else {
            tracing::warn!("close code {code} may not be sent; closing with 1011 instead");
            1011
        };
        self.state.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            *state = Some((code, reason));
            true
        });
    }

    /// The close asked for so far, if any.
    pub fn current(&self) -> Option<(u16, String)> {
        self.state.borrow().clone()
    }

    /// Waits until a close is requested, and says how.
    pub async fn requested(&self) -> (u16, String) {
        let mut watcher = self.state.subscribe();
        let request = watcher.wait_for(Option::is_some).await.expect("the sender lives in self");
        request.clone().expect("waited for some")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::{Control, Registry};

    #[test]
    fn a_close_request_is_one_a_close_frame_can_carry() {
        let (forbidden, fine) = (Control::new(1), Control::new(1));
        forbidden.request(1006, "ü".repeat(100));
        assert_eq!(forbidden.current(), Some((1011, "ü".repeat(61))));
        fine.request(4000, "bye");
        fine.request(4001, "later requests lose");
        assert_eq!(fine.current(), Some((4000, "bye".into())));
    }

    #[tokio::test]
    async fn a_client_waits_for_its_own_places_only() {
        let registry = Registry::new(8, usize::MAX);
        let (flooder, other) = (Arc::new(Control::new(2)), Arc::new(Control::new(2)));
        let held = [flooder.place(&registry).await, flooder.place(&registry).await];
        assert!(flooder.place(&registry).now_or_never().is_none(), "both places held: it waits");
        assert!(other.place(&registry).now_or_never().is_some(), "another client does not");
        drop(held);
        assert!(flooder.place(&registry).now_or_never().is_some(), "given back when the handler takes them");
    }
}
