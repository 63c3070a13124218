//! A server's WebSocket over an async byte stream: tungstenite's protocol
//! state machine ([`WebSocketContext`]), driven from the connection's polls.
//!
//! tokio-tungstenite's `WebSocketStream` does the same behind a sync adapter
//! that owns the stream and reaches the task through two proxy wakers, one
//! registered on every read and one on every write, each wake passing through
//! a proxy. Here each call lends the poll's own [`Context`] to the stream for
//! its duration, so a wake goes straight to the task: ~0.4k fewer
//! instructions an echo, 2-3% (BENCHMARKS.md). The protocol itself (framing,
//! fragments, control frames, the close handshake, limits) stays tungstenite's.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tokio_tungstenite::tungstenite::{Error, Message};

/// One upgraded connection's WebSocket, server side.
pub struct Socket<S> {
    io: S,
    protocol: WebSocketContext,
    /// The connection closed or failed: nothing more is read.
    ended: bool,
    /// Nothing is left in tungstenite's write buffer that a flush must
    /// push out before more is queued.
    ready: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// A socket on a stream whose upgrade is done.
    pub fn new(io: S, config: WebSocketConfig) -> Self {
        Socket { io, protocol: WebSocketContext::new(Role::Server, Some(config)), ended: false, ready: true }
    }

    /// The next message; `None` once the connection is closed. Control
    /// frames are answered on the way (a ping's pong, a close's reply).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match would_block(self.protocol.read(&mut Lent { io: &mut self.io, cx })) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(message)) => Poll::Ready(Some(Ok(message))),
            Poll::Ready(Err(error)) => {
                self.ended = true;
                match error {
                    Error::ConnectionClosed | Error::AlreadyClosed => Poll::Ready(None),
                    error => Poll::Ready(Some(Err(error))),
                }
            }
        }
    }

    /// Ready when a message may be queued: what an earlier write left in
    /// tungstenite's buffer is flushed first.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.ready { Poll::Ready(Ok(())) } else { self.poll_write_out(cx) }
    }

    /// Queues a message (after [`poll_ready`](Self::poll_ready)); it may go
    /// out at once when tungstenite's buffer is full.
    pub fn send(&mut self, cx: &mut Context<'_>, message: Message) -> Result<(), Error> {
        match would_block(self.protocol.write(&mut Lent { io: &mut self.io, cx }, message)) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                // Queued, not sent: the next `poll_ready` flushes it.
                self.ready = false;
                Ok(())
            }
        }
    }

    /// Writes out everything queued.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match std::task::ready!(self.poll_write_out(cx)) {
            // The close handshake just finished: the flush did its part.
            Err(Error::ConnectionClosed) => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }

    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let flushed = std::task::ready!(would_block(self.protocol.flush(&mut Lent { io: &mut self.io, cx })));
        self.ready = true;
        Poll::Ready(flushed)
    }
}

/// A tungstenite result whose `WouldBlock` means "the stream is not ready":
/// the lent context was registered with it, so the task is woken when it is.
fn would_block<T>(result: Result<T, Error>) -> Poll<Result<T, Error>> {
    match result {
        Err(Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

/// The stream with a poll's context lent to it, as the blocking `Read` and
/// `Write` tungstenite drives: "not ready" becomes `WouldBlock`.
struct Lent<'a, 'b, S> {
    io: &'a mut S,
    cx: &'a mut Context<'b>,
}

impl<S: AsyncRead + Unpin> Read for Lent<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        blocking(Pin::new(&mut *self.io).poll_read(self.cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

impl<S: AsyncWrite + Unpin> Write for Lent<'_, '_, S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        blocking(Pin::new(&mut *self.io).poll_write(self.cx, data))
    }

    fn flush(&mut self) -> io::Result<()> {
        blocking(Pin::new(&mut *self.io).poll_flush(self.cx))
    }
}

/// An async result as a blocking call reports it: "not ready" is
/// `WouldBlock` (the reverse of [`would_block`]).
fn blocking<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    use super::*;

    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn pair() -> (Socket<tokio::io::DuplexStream>, WebSocketStream<tokio::io::DuplexStream>) {
        let (ours, theirs) = tokio::io::duplex(1024);
        (
            Socket::new(ours, WebSocketConfig::default()),
            WebSocketStream::from_raw_socket(theirs, Role::Client, None).await,
        )
    }

    #[tokio::test]
    async fn a_read_that_finds_nothing_waits_and_the_peer_wakes_the_polling_task() {
        let (mut socket, mut peer) = pair().await;
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(socket.poll_next(&mut cx).is_pending());
        peer.send(Message::text("hello")).await.unwrap();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the lent context was registered with the stream");
        match socket.poll_next(&mut cx) {
            Poll::Ready(Some(Ok(message))) => assert_eq!(message, Message::text("hello")),
            other => panic!("expected the message, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn messages_go_out_in_order_and_a_close_handshake_ends_the_stream() {
        let (mut socket, mut peer) = pair().await;
        std::future::poll_fn(|cx| {
            std::task::ready!(socket.poll_ready(cx)).unwrap();
            socket.send(cx, Message::binary(vec![1, 2])).unwrap();
            socket.send(cx, Message::text("two")).unwrap();
            socket.poll_flush(cx)
        })
        .await
        .unwrap();
        assert_eq!(peer.next().await.unwrap().unwrap(), Message::binary(vec![1, 2]));
        assert_eq!(peer.next().await.unwrap().unwrap(), Message::text("two"));

        let bye = CloseFrame { code: CloseCode::from(4000), reason: "bye".into() };
        peer.send(Message::Close(Some(bye.clone()))).await.unwrap();
        let closed = std::future::poll_fn(|cx| socket.poll_next(cx)).await;
        assert_eq!(closed.unwrap().unwrap(), Message::Close(Some(bye.clone())));
        assert!(std::future::poll_fn(|cx| socket.poll_next(cx)).await.is_none(), "then the stream ends");
        assert_eq!(peer.next().await.unwrap().unwrap(), Message::Close(Some(bye)), "the close is answered");
    }
}
