//! What a connection and the registry share: a request to close it (with
//! the close frames a server may send), whether its peer was heard from
//! since the last ping, and its places in the handler's event queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio::sync::Semaphore;
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
/// the handler, the registry, the connection itself; seen by the
/// connection's task), whether the connection heard from the peer since the
/// registry's last ping round (the `heartbeat` module), and the places its
/// events may still take in the handler's queue ([`Place`]).
///
/// The close request is a cell set once and a waker, not a `watch`
/// channel: the connection waits for it on every turn of its loop, and a
/// `watch` wait subscribed and queued a waiter under a lock each time
/// (~1.4k instructions per echo, and 0.4 KiB more per idle connection:
/// tests/bench/HISTORY.md).
#[derive(Debug)]
pub struct Control {
    close: OnceLock<(u16, String)>,
    /// The connection's task, woken by a close request and by its socket.
    task: AtomicWaker,
    /// The socket woke the task since the connection last read.
    socket_woke: AtomicBool,
    heard: AtomicBool,
    places: Semaphore,
}

/// One of a client's places in its handler's event queue, held by a queued
/// event until the handler takes it. A client gets a few (32 by default,
/// `event-queue-per-client`): one that sends faster than the handler
/// answers waits for its own places, and the others' events go in ahead
/// rather than behind its pile (beside a flood, the others' p99 was ~10x
/// their own alone, ~4x with places: tests/bench/HISTORY.md).
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
        Control {
            close: OnceLock::new(),
            task: AtomicWaker::new(),
            socket_woke: AtomicBool::new(true),
            heard: AtomicBool::new(true),
            places: Semaphore::new(places),
        }
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
        if self.close.set((code, reason)).is_ok() {
            self.task.wake();
        }
    }

    /// The close asked for so far, if any.
    pub fn current(&self) -> Option<(u16, String)> {
        self.close.get().cloned()
    }

    /// Waits until a close is requested, and says how. One task waits at a
    /// time (the connection's): a later wait takes the waker over.
    pub fn requested(&self) -> impl Future<Output = (u16, String)> + '_ {
        std::future::poll_fn(move |cx| {
            // Registered before looking, so a request in between still wakes.
            self.task.register(cx.waker());
            self.close.get().map_or(Poll::Pending, |request| Poll::Ready(request.clone()))
        })
    }

    /// Whether the socket woke the connection's task since the last call
    /// (true at first); `task` is woken when it does. The connection reads
    /// with `Waker::from` this `Control`, and only when this says so: its
    /// task is woken for writes too, and reading on each of those touched
    /// the read side's cold state for nothing (tests/bench/HISTORY.md).
    pub fn socket_woke(&self, task: &Waker) -> bool {
        // Registered before looking, so a wake in between is not lost.
        self.task.register(task);
        self.socket_woke.swap(false, Ordering::SeqCst)
    }

    /// The last read returned a message: more may be buffered, so the next
    /// turn reads again without a wake from the socket.
    pub fn read_again(&self) {
        self.socket_woke.store(true, Ordering::Relaxed);
    }
}

/// The waker the connection reads with: it marks the socket's wake.
impl Wake for Control {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.socket_woke.store(true, Ordering::SeqCst);
        self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

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
    async fn a_waiting_connection_hears_of_a_close_request() {
        let control = Arc::new(Control::new(1));
        let waiting = tokio::spawn({
            let control = control.clone();
            async move { control.requested().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no request yet");
        control.request(4000, "bye");
        assert_eq!(waiting.await.unwrap(), (4000, "bye".into()));
        let late = control.requested().now_or_never();
        assert_eq!(late, Some((4000, "bye".into())), "a wait begun after the request ends at once");
    }

    #[test]
    fn a_wake_from_the_socket_wakes_the_task_and_says_so_once() {
        struct Counter(AtomicUsize);
        impl Wake for Counter {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let task = Waker::from(counter.clone());
        let control = Arc::new(Control::new(1));
        assert!(control.socket_woke(&task), "a new connection reads at once");
        assert!(!control.socket_woke(&task), "then waits for its socket");
        Waker::from(control.clone()).wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the socket's wake reaches the task");
        assert!(control.socket_woke(&task));
        assert!(!control.socket_woke(&task), "once");
        control.read_again();
        assert!(control.socket_woke(&task), "a read that returned a message reads again");
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
