//! A client's outbound queue: what the registry hands the connection's
//! writer, bounded in messages and in bytes.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures_util::task::AtomicWaker;

use crate::codec::{Frame, Message, OutgoingEvent};

/// Close code sent to a client whose outbound queue overflowed.
pub const CLOSE_SLOW_READER: u16 = 1008;

/// What the writer side of a connection sends. Pointer-sized variants: a
/// connection keeps its queue's slots once it has been sent something.
#[derive(Debug)]
pub enum Outbound {
    /// An event: the writer gives it the connection's next event id.
    Event(Arc<OutgoingEvent>),
    /// A control message (auth-ok, auth-rejected), which carries no id.
    Control(Box<Message>),
    /// A whole WebSocket message outside the protocol (raw handlers).
    Raw(Box<Frame>),
    /// A WebSocket ping (see `heartbeat`).
    Ping,
}

impl Outbound {
    /// Roughly the bytes it holds until written; the same whenever asked.
    pub(super) fn size(&self) -> usize {
        match self {
            Outbound::Event(event) => event.size_hint(),
            Outbound::Control(message) => match &**message {
                Message::AuthRejected { reason } => reason.len(),
                _ => 0,
            },
            Outbound::Raw(frame) => frame.payload_len(),
            Outbound::Ping => 0,
        }
    }
}

/// A new queue of at most `capacity` messages: the registry's end and the
/// writer's.
pub(super) fn queue(capacity: usize) -> (Queue, Outbox) {
    let shared = Arc::new(Shared::default());
    (Queue { shared: shared.clone(), capacity }, Outbox { shared, unread: false })
}

/// A queue under a lock and the writer's waker, in one allocation: a tokio
/// channel here cost every connection ~1 KiB (its cache-padded state and a
/// first block of 32 slots, allocated up front) and, with a thousand
/// connections, showed among the first touches of cold memory in profiles
/// (tests/bench/HISTORY.md). The lock is held for a push or a pop, never across an
/// await.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    writer: AtomicWaker,
    /// Set by every push and by the registry's end going away, taken by the
    /// writer: a writer polled for another reason (its connection read a
    /// frame) learns without the lock that nothing new is queued.
    pushed: AtomicBool,
}

#[derive(Default)]
struct State {
    items: VecDeque<Outbound>,
    /// Bytes queued and not yet taken by the writer.
    bytes: usize,
    /// The registry forgot the client: the writer gets what is left, then
    /// the end.
    registry_gone: bool,
    writer_gone: bool,
}

/// A queue whose buffer grew past this many slots gives it back once
/// drained (a fan-out burst must not stay allocated on an idle connection).
const KEPT_CAPACITY: usize = 8;

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the queue consistent: every
        // change under it is a single push, pop or flag.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the writer there is news (an item, or the registry's end gone),
    /// after the change was made under the lock.
    fn wake_writer(&self) {
        self.pushed.store(true, Ordering::SeqCst);
        self.writer.wake();
    }
}

/// The registry's end of a client's queue.
pub(super) struct Queue {
    shared: Arc<Shared>,
    capacity: usize,
}

/// Why a queue had no room.
pub(super) enum Full {
    Messages(usize),
    Bytes(usize),
    /// The writer is gone: nothing to send to, nothing to report.
    Closed,
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Full::Messages(count) => write!(f, "{count} messages queued"),
            Full::Bytes(bytes) => write!(f, "{bytes} bytes queued"),
            Full::Closed => f.write_str("the connection is closing"),
        }
    }
}

impl Queue {
    /// A place for an item of `bytes`, without waiting, if the queue holds
    /// fewer messages than its capacity and, with it, at most `max_bytes`
    /// (an empty queue takes any one item). The queue stays locked until
    /// the place is used or dropped.
    pub(super) fn reserve(&self, bytes: usize, max_bytes: usize) -> Result<Slot<'_>, Full> {
        let state = self.shared.state();
        if state.writer_gone {
            return Err(Full::Closed);
        }
        if state.items.len() >= self.capacity {
            return Err(Full::Messages(self.capacity));
        }
        if state.bytes != 0 && state.bytes.saturating_add(bytes) > max_bytes {
            return Err(Full::Bytes(state.bytes));
        }
        Ok(Slot { state, shared: &self.shared })
    }
}

/// A reserved place in a client's queue.
pub(super) struct Slot<'a> {
    state: std::sync::MutexGuard<'a, State>,
    shared: &'a Shared,
}

impl Slot<'_> {
    pub(super) fn send(mut self, item: Outbound) {
        self.state.bytes += item.size();
        self.state.items.push_back(item);
        drop(self.state);
        self.shared.wake_writer();
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.shared.state().registry_gone = true;
        self.shared.wake_writer();
    }
}

/// The writer's end of a client's outbound queue: what it takes no longer
/// counts against the client's queued bytes.
pub struct Outbox {
    shared: Arc<Shared>,
    /// The queue may hold items this end has not taken yet.
    unread: bool,
}

impl Outbox {
    /// The next item, or `None` once the registry has forgotten the client
    /// and nothing is left; when there is none yet, the task is woken by
    /// the next push.
    pub fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<Outbound>> {
        loop {
            if !self.unread {
                // Registered before looking, so a push in between wakes.
                self.shared.writer.register(cx.waker());
                if !self.shared.pushed.swap(false, Ordering::SeqCst) {
                    return Poll::Pending;
                }
                self.unread = true;
            }
            let mut state = self.shared.state();
            if let Some(item) = take(&mut state) {
                return Poll::Ready(Some(item));
            }
            if state.registry_gone {
                return Poll::Ready(None);
            }
            self.unread = false;
        }
    }

    /// The next item, if one is queued (for tests: the connection polls).
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<Outbound> {
        take(&mut self.shared.state())
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.writer_gone = true;
        state.items = VecDeque::new();
        state.bytes = 0;
    }
}

/// Takes the first item, and gives back the memory of a drained burst.
fn take(state: &mut State) -> Option<Outbound> {
    let item = state.items.pop_front()?;
    state.bytes -= item.size();
    if state.items.is_empty() && state.items.capacity() > KEPT_CAPACITY {
        state.items = VecDeque::new();
    }
    Some(item)
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn event(text: &str) -> Outbound {
        let args = vec![crate::codec::Value::String(text.into())];
        Outbound::Event(Arc::new(OutgoingEvent::new("x", None, args)))
    }

    fn push(queue: &Queue, item: Outbound, max_bytes: usize) -> Result<(), Full> {
        queue.reserve(item.size(), max_bytes).map(|slot| slot.send(item))
    }

    #[test]
    fn a_queue_is_bounded_in_messages_and_in_bytes_but_takes_one_item_alone() {
        let (queue, mut outbox) = queue(2);
        let big = event(&"a".repeat(100));
        assert!(push(&queue, big, 10).is_ok(), "an empty queue takes one item over the bytes");
        assert!(matches!(push(&queue, event("b"), 10), Err(Full::Bytes(101))));
        outbox.try_recv().expect("queued");
        assert!(push(&queue, event("b"), 10).is_ok(), "room again once the writer took it");
        assert!(push(&queue, event("c"), 10).is_ok());
        assert!(matches!(push(&queue, event(""), 10), Err(Full::Messages(2))));
        drop(outbox);
        assert!(matches!(push(&queue, event(""), 10), Err(Full::Closed)));
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_a_push_and_ends_after_what_is_left() {
        let (queue, mut outbox) = queue(8);
        let mut waiting = Box::pin(std::future::poll_fn(|cx| outbox.poll_recv(cx)));
        assert!((&mut waiting).now_or_never().is_none(), "nothing queued: it waits");
        let pusher = std::thread::spawn(move || {
            push(&queue, Outbound::Ping, 100).ok().expect("room");
            push(&queue, Outbound::Ping, 100).ok().expect("room");
            // The registry forgets the client: what is queued still goes out.
        });
        assert!(matches!(waiting.await, Some(Outbound::Ping)));
        pusher.join().unwrap();
        let mut recv = std::future::poll_fn(|cx| outbox.poll_recv(cx));
        assert!(matches!((&mut recv).await, Some(Outbound::Ping)));
        assert!(recv.await.is_none(), "the registry's end is gone and the queue is empty");
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let (queue, mut outbox) = queue(1000);
        for _ in 0..100 {
            push(&queue, Outbound::Ping, usize::MAX).ok().expect("room");
        }
        while outbox.try_recv().is_some() {}
        assert_eq!(queue.shared.state().items.capacity(), 0);
    }
}
