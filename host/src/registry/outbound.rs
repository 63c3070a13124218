//! A client's outbound queue: what the registry hands the connection's
//! writer, bounded in messages and in bytes.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use crate::codec::{Frame, Message, OutgoingEvent};

/// Close code sent to a client whose outbound queue overflowed.
pub const CLOSE_SLOW_READER: u16 = 1008;

/// What the writer side of a connection sends. Pointer-sized variants: a
/// connection's queue allocates its first block of 32 slots up front, so
/// the size of this type is paid by every idle connection.
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
    let (sender, receiver) = mpsc::channel(capacity);
    let queued = Arc::new(AtomicUsize::new(0));
    (Queue { sender, queued: queued.clone() }, Outbox { receiver, queued })
}

/// The registry's end of a client's queue.
pub(super) struct Queue {
    sender: mpsc::Sender<Outbound>,
    /// Bytes queued and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
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
    /// (an empty queue takes any one item).
    pub(super) fn reserve(&self, bytes: usize, max_bytes: usize) -> Result<mpsc::Permit<'_, Outbound>, Full> {
        let queued = self.queued.load(Ordering::Relaxed);
        if queued != 0 && queued.saturating_add(bytes) > max_bytes {
            return Err(Full::Bytes(queued));
        }
        match self.sender.try_reserve() {
            Ok(slot) => {
                self.queued.fetch_add(bytes, Ordering::Relaxed);
                Ok(slot)
            }
            Err(mpsc::error::TrySendError::Full(())) => Err(Full::Messages(self.sender.max_capacity())),
            Err(mpsc::error::TrySendError::Closed(())) => Err(Full::Closed),
        }
    }
}

/// The writer's end of a client's outbound queue: what it takes no longer
/// counts against the client's queued bytes.
pub struct Outbox {
    receiver: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    /// The next item; cancel safe, as `mpsc::Receiver::recv` is.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let item = self.receiver.recv().await?;
        self.taken(&item);
        Some(item)
    }

    pub fn try_recv(&mut self) -> Result<Outbound, mpsc::error::TryRecvError> {
        let item = self.receiver.try_recv()?;
        self.taken(&item);
        Ok(item)
    }

    fn taken(&self, item: &Outbound) {
        self.queued.fetch_sub(item.size(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> Outbound {
        let args = vec![crate::codec::Value::String(text.into())];
        Outbound::Event(Arc::new(OutgoingEvent::new("x", None, args)))
    }

    /// Queues `item` with a byte limit of `max_bytes`.
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
}
