//! A server's WebSocket over an async byte stream: tungstenite's protocol
//! state machine ([`WebSocketContext`]), driven from the connection's polls.
//!
//! tokio-tungstenite's `WebSocketStream` does the same behind a sync adapter
//! that owns the stream and reaches the task through two proxy wakers, one
//! registered on every read and one on every write, each wake passing through
//! a proxy. Here each call lends the poll's own [`Context`] to the stream for
//! its duration, so a wake goes straight to the task: ~0.4k fewer
//! instructions an echo, 2-3% (tests/bench/HISTORY.md). The protocol itself (framing,
//! fragments, control frames, the close handshake, limits) stays tungstenite's.
//!
//! tungstenite's buffers keep the size of the biggest message a connection
//! ever read or wrote (2 MiB for one message of 1 MiB), and it has no way to
//! shrink them; [`Socket::release_buffers`] swaps in a fresh context instead,
//! where the old one holds nothing.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tokio_tungstenite::tungstenite::{Error, Message};

use super::frame_boundary::FrameBoundary;

/// One upgraded connection's WebSocket, server side.
pub struct Socket<S> {
    io: S,
    protocol: WebSocketContext,
    /// The connection closed or failed: nothing more is read.
    ended: bool,
    /// Nothing is left in tungstenite's write buffer that a flush must
    /// push out before more is queued.
    ready: bool,
    /// Where the bytes read so far stand among the client's frames.
    input: FrameBoundary,
    /// The last read returned nothing: no whole frame is left in
    /// tungstenite's buffer, only the part of one `input` counts as in
    /// flight.
    read_all: bool,
    /// The biggest message written since the context was made.
    largest_written: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Socket<S> {
    /// A socket on a stream whose upgrade is done.
    pub fn new(io: S, config: WebSocketConfig) -> Self {
        Socket {
            io,
            protocol: WebSocketContext::new(Role::Server, Some(config)),
            ended: false,
            ready: true,
            input: FrameBoundary::default(),
            read_all: false,
            largest_written: 0,
        }
    }

    /// The next message; `None` once the connection is closed. Control
    /// frames are answered on the way (a ping's pong, a close's reply).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let read = would_block(self.protocol.read(&mut Lent { io: &mut self.io, cx, input: &mut self.input }));
        self.read_all = read.is_pending();
        match read {
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
        self.largest_written = self.largest_written.max(message.len());
        match would_block(self.protocol.write(&mut Lent { io: &mut self.io, cx, input: &mut self.input }, message)) {
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
        let flushed = std::task::ready!(would_block(self.protocol.flush(&mut Lent {
            io: &mut self.io,
            cx,
            input: &mut self.input
        })));
        self.ready = true;
        Poll::Ready(flushed)
    }

    /// Gives tungstenite's buffers back once a message bigger than its read
    /// size grew them, if they hold nothing: the last read found no whole
    /// frame and ended between messages (no fragment, no part of a frame
    /// kept), the connection is open both ways, and a flush writes out all
    /// that is queued (a pong included). Otherwise a later call tries again.
    /// The connection calls it at each heartbeat ping, so a connection that
    /// goes quiet after a big message holds its usual few KiB again within
    /// a ping interval, and a busy one swaps its context at most that often.
    pub fn release_buffers(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        let usual = self.protocol.get_config().read_buffer_size;
        let grown = self.input.largest() > usual as u64 || self.largest_written > usual;
        if !grown || self.ended || !self.read_all || !self.input.between_messages() || !self.protocol.can_write() {
            return Ok(());
        }
        match self.poll_write_out(cx) {
            Poll::Ready(Ok(())) => {
                let config = *self.protocol.get_config();
                self.protocol = WebSocketContext::new(Role::Server, Some(config));
                self.input.forget_largest();
                self.largest_written = 0;
                Ok(())
            }
            Poll::Ready(Err(error)) => Err(error),
            Poll::Pending => Ok(()),
        }
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
    /// Follows what is read (writes and flushes read nothing, but every
    /// byte tungstenite is given must pass here).
    input: &'a mut FrameBoundary,
}

impl<S: AsyncRead + Unpin> Read for Lent<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        blocking(Pin::new(&mut *self.io).poll_read(self.cx, &mut buf))?;
        self.input.feed(buf.filled());
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

    use futures_util::{FutureExt, SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    use super::*;
    use crate::server::READ_BUFFER_BYTES;
    use crate::server::frame_boundary::client_frame;

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

    /// A socket with the server's read size for tungstenite, and the raw
    /// other end of its stream.
    fn raw_pair() -> (Socket<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        (Socket::new(ours, WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES)), theirs)
    }

    async fn next(socket: &mut Socket<tokio::io::DuplexStream>) -> Message {
        std::future::poll_fn(|cx| socket.poll_next(cx)).await.expect("a message").expect("no error")
    }

    /// Reads until nothing is left, then asks for the buffers back; whether
    /// a fresh context replaced the old one.
    fn read_all_and_release(socket: &mut Socket<tokio::io::DuplexStream>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(socket.poll_next(&mut cx).is_pending(), "nothing more to read");
        socket.release_buffers(&mut cx).unwrap();
        socket.input.largest() == 0 && socket.largest_written == 0
    }

    #[tokio::test]
    async fn buffers_a_big_message_grew_are_released_between_messages_and_nothing_is_lost() {
        let (mut socket, mut peer) = raw_pair();
        let big = vec![7; 16 * 1024];
        peer.write_all(&client_frame(true, 2, &big)).await.unwrap();
        assert_eq!(next(&mut socket).await, Message::binary(big.clone()));
        // A ping after it: its pong is queued when the ping is read, and must go out.
        peer.write_all(&client_frame(true, 9, b"hb")).await.unwrap();
        assert_eq!(next(&mut socket).await, Message::Ping(b"hb".to_vec().into()));
        assert!(read_all_and_release(&mut socket), "released between messages");

        let mut pong = [0; 4];
        peer.read_exact(&mut pong).now_or_never().expect("the pong went out").unwrap();
        assert_eq!(pong, [0x8a, 2, b'h', b'b'], "the pong went out");
        // The fresh context reads and writes on.
        peer.write_all(&client_frame(true, 1, b"after")).await.unwrap();
        assert_eq!(next(&mut socket).await, Message::text("after"));
        // A big message written and not flushed yet: the release writes it out first.
        std::future::poll_fn(|cx| {
            std::task::ready!(socket.poll_ready(cx)).unwrap();
            Poll::Ready(socket.send(cx, Message::binary(big.clone())))
        })
        .await
        .unwrap();
        assert!(read_all_and_release(&mut socket), "a big message written grows them too");
        let mut reply = vec![0; 4 + big.len()];
        // Already in the pipe, or lost with the old context.
        peer.read_exact(&mut reply).now_or_never().expect("written out by the release").unwrap();
        assert_eq!(reply[..4], [0x82, 126, 0x40, 0x00], "a 16 KiB binary frame");
        assert_eq!(reply[4..], big);
    }

    #[tokio::test]
    async fn buffers_holding_a_whole_frame_not_yet_read_are_kept() {
        let (mut socket, mut peer) = raw_pair();
        let mut two = client_frame(true, 2, &[3; 4000]);
        two.extend(client_frame(true, 1, b"second"));
        peer.write_all(&two).await.unwrap();
        assert_eq!(next(&mut socket).await, Message::binary(vec![3; 4000]));
        // Both frames were read in one go: the second is whole in tungstenite's buffer.
        let mut cx = Context::from_waker(Waker::noop());
        socket.release_buffers(&mut cx).unwrap();
        match socket.poll_next(&mut cx) {
            Poll::Ready(Some(Ok(message))) => assert_eq!(message, Message::text("second")),
            other => panic!("the second frame is lost: {other:?}"),
        }
    }

    #[tokio::test]
    async fn buffers_holding_part_of_a_frame_or_of_a_message_are_kept() {
        let (mut socket, mut peer) = raw_pair();
        peer.write_all(&client_frame(true, 2, &[1; 5000])).await.unwrap();
        assert_eq!(next(&mut socket).await, Message::binary(vec![1; 5000]));

        // Part of the next frame's header, then part of its payload.
        let text = client_frame(true, 1, &[b'x'; 300]);
        for (from, to) in [(0, 3), (3, 100)] {
            peer.write_all(&text[from..to]).await.unwrap();
            assert!(!read_all_and_release(&mut socket), "kept with {to} bytes of a frame read");
        }
        peer.write_all(&text[100..]).await.unwrap();
        assert_eq!(next(&mut socket).await, Message::text("x".repeat(300)));

        // The first fragment of a message.
        peer.write_all(&client_frame(false, 1, b"frag")).await.unwrap();
        assert!(!read_all_and_release(&mut socket), "kept with a fragment read");
        peer.write_all(&client_frame(true, 0, b"ments")).await.unwrap();
        assert_eq!(next(&mut socket).await, Message::text("fragments"));
        assert!(read_all_and_release(&mut socket), "released once the message is whole");
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
