//! One WebSocket connection, served by one task: it reads and decodes
//! frames and drives the session, and its [`Writer`] numbers, encodes and
//! writes outgoing events. Generic over the byte stream, so every listener
//! mode shares it.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tracing::Instrument;

use crate::codec::{Codec, Frame, Message};
use crate::config::Config;
use crate::registry::{Connection, Control, Outbound, Outbox};
use crate::runtime::metrics::{HandlerMetrics, Refusal};
use crate::runtime::{Handler, RequestInfo};
use crate::session::{Action, INVALID_AUTH_KEY, Session};

use super::socket::Socket;

/// Close code and reason for a frame that is not a protocol message.
pub const CLOSE_MALFORMED: (u16, &str) = (1002, "Malformed message");
/// Close code for a violation of the WebSocket protocol itself.
pub const CLOSE_PROTOCOL_ERROR: (u16, &str) = (1002, "Protocol error");
/// Close code for a text message that is not UTF-8.
pub const CLOSE_INVALID_UTF8: (u16, &str) = (1007, "Invalid UTF-8");
/// Close code for a message over the size limit.
pub const CLOSE_TOO_BIG: (u16, &str) = (1009, "Message too big");
/// Close code after an auth rejection.
pub const CLOSE_REJECTED: u16 = 1008;
/// How long the handler gets to answer what was queued before a close, a
/// closing peer to finish the close handshake, and the writer to flush.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Most messages the writer buffers before it flushes.
const WRITE_BURST: usize = 64;

/// Serves one upgraded WebSocket until it closes.
pub async fn serve<S>(ws: Socket<S>, request: RequestInfo, handler: Handler, config: Arc<Config>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = handler.registry().connect();
    let span = tracing::debug_span!("connection", handler = %handler.name(), client = connection.id);
    serve_registered(ws, request, handler, config, connection).instrument(span).await;
}

async fn serve_registered<S>(
    mut ws: Socket<S>,
    request: RequestInfo,
    handler: Handler,
    config: Arc<Config>,
    Connection { id, outbox, control }: Connection,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let registry = handler.registry().clone();
    tracing::debug!(path = %request.path, remote = ?request.remote_addr, "connected");

    let mut writer = Writer::new(outbox);
    let socket_waker = Waker::from(control.clone());
    let mut session = Session::new(config.messages_before_auth, config.pre_auth_queue_bytes);
    // One auth attempt per connection: the request is not kept after it.
    let mut request = Some(request);
    let mut pending_auth: Option<PendingAuth> = None;
    // The close the handler hears about: the peer's, or the one we asked for.
    let mut closed_with: Option<(u16, String)> = None;
    // Set once the connection is ending: data frames are no longer handled.
    let mut closing = false;
    // A raw handler takes whole messages: no handshake, no codec.
    let raw = handler.version().schema.is_raw();
    // Timers are allocated only while they run: an idle authenticated
    // connection holds neither.
    let mut auth_deadline = (!raw).then(|| Deadline::after(config.auth_timeout()));
    let mut close_deadline: Option<Deadline> = None;
    if raw {
        registry.set_authenticated(id);
        writer.sending_while(&mut ws, pin!(handler.auth_ok(id))).await;
    }

    let timed_out = loop {
        // Nothing is read between ending the connection for bad input and
        // the close request that follows: the stream may be broken.
        let reading = !closing || close_deadline.is_some();
        let input = tokio::select! {
            // In this order, so that a client whose frames are always ready
            // cannot keep the others from being seen.
            biased;
            request = control.requested(), if close_deadline.is_none() => Input::CloseRequested(request),
            () = Deadline::wait(&mut close_deadline) => Input::CloseTimedOut,
            () = Deadline::wait(&mut auth_deadline), if !session.auth_sent() => Input::AuthTimeout,
            verdict = async { pending_auth.as_mut().expect("guarded").await }, if pending_auth.is_some() => {
                pending_auth = None;
                auth_deadline = None;
                Input::Verdict(verdict)
            }
            frame = std::future::poll_fn(|cx| {
                // One task reads and writes: what is queued goes out first.
                let _ = writer.poll_send(&mut ws, cx);
                if !reading || !control.socket_woke(cx.waker()) {
                    return Poll::Pending;
                }
                let frame = ready!(ws.poll_next(&mut Context::from_waker(&socket_waker)));
                control.read_again();
                Poll::Ready(frame)
            }) => Input::Read(frame),
        };
        tracing::trace!(input = %input.kind(), "input");
        if let Input::Read(Some(Ok(_))) = input {
            control.heard();
        }
        let action = match input {
            Input::Read(None) => break false,
            Input::Read(Some(Err(tungstenite::Error::Capacity(error)))) => {
                tracing::debug!("{error}");
                registry.metrics().refused(Refusal::TooBig);
                Action::Close { code: CLOSE_TOO_BIG.0, reason: CLOSE_TOO_BIG.1 }
            }
            Input::Read(Some(Err(tungstenite::Error::Protocol(error)))) => {
                tracing::debug!("protocol error: {error}");
                registry.metrics().refused(Refusal::Protocol);
                Action::Close { code: CLOSE_PROTOCOL_ERROR.0, reason: CLOSE_PROTOCOL_ERROR.1 }
            }
            Input::Read(Some(Err(tungstenite::Error::Utf8(_)))) => {
                registry.metrics().refused(Refusal::Protocol);
                Action::Close { code: CLOSE_INVALID_UTF8.0, reason: CLOSE_INVALID_UTF8.1 }
            }
            Input::Read(Some(Err(error))) => {
                tracing::debug!("read error: {error}");
                break false;
            }
            Input::Read(Some(Ok(WsMessage::Close(frame)))) => {
                let peer = frame.map_or((1005, String::new()), |f| (f.code.into(), f.reason.to_string()));
                closed_with.get_or_insert(peer);
                continue;
            }
            Input::Read(Some(Ok(WsMessage::Binary(_) | WsMessage::Text(_)))) if closing => continue,
            Input::Read(Some(Ok(WsMessage::Binary(bytes)))) if raw => {
                writer.sending_while(&mut ws, pin!(handler.dispatch_raw(id, &control, Frame::Binary(bytes)))).await;
                continue;
            }
            Input::Read(Some(Ok(WsMessage::Text(text)))) if raw => {
                let frame = Frame::Text(text.to_string());
                writer.sending_while(&mut ws, pin!(handler.dispatch_raw(id, &control, frame))).await;
                continue;
            }
            Input::Read(Some(Ok(WsMessage::Binary(bytes)))) => {
                read(Frame::Binary(bytes), &mut writer.codec, &mut session, registry.metrics())
            }
            Input::Read(Some(Ok(WsMessage::Text(text)))) => {
                let frame = Frame::Text(text.to_string());
                read(frame, &mut writer.codec, &mut session, registry.metrics())
            }
            Input::Read(Some(Ok(_))) => continue,
            Input::AuthTimeout => match session.on_auth_timeout() {
                Some(action) => action,
                None => continue,
            },
            Input::Verdict(verdict) => match session.on_auth_result(verdict) {
                Ok(queued) => {
                    registry.set_authenticated(id);
                    registry.send_control(id, Message::AuthOk);
                    let accepted = async {
                        handler.auth_ok(id).await;
                        for event in queued {
                            handler.dispatch(id, &control, event).await;
                        }
                    };
                    writer.sending_while(&mut ws, pin!(accepted)).await;
                    continue;
                }
                Err(reject) => reject,
            },
            Input::CloseRequested(request) => {
                closing = true;
                writer.close_with(&request);
                closed_with.get_or_insert(request);
                close_deadline = Some(Deadline::after(CLOSE_GRACE * 2));
                continue;
            }
            Input::CloseTimedOut => {
                tracing::debug!("peer did not finish the close handshake");
                break true;
            }
        };
        match action {
            Action::Ignore(why) => tracing::trace!("ignored: {why}"),
            Action::Authenticate { key } => {
                let handler = handler.clone();
                let request = request.take().unwrap_or_default();
                pending_auth = Some(Box::pin(async move {
                    handler
                        .authenticate(id, key, request)
                        .await
                        .map_err(|reason| if reason.is_empty() { INVALID_AUTH_KEY.to_owned() } else { reason })
                }));
            }
            Action::Dispatch(event) => writer.sending_while(&mut ws, pin!(handler.dispatch(id, &control, event))).await,
            Action::Reject { reason } => {
                tracing::debug!("auth rejected: {reason}");
                registry.send_control(id, Message::AuthRejected { reason: reason.clone() });
                control.request(CLOSE_REJECTED, reason);
            }
            Action::Close { code, reason } => {
                closing = true;
                close_after_replies(&handler, &control, code, reason);
            }
        }
    };

    // A close we asked for goes out even if the peer is already gone,
    // unless the writer already had the close handshake's time for it.
    if let Some(request) = control.current().filter(|_| !timed_out) {
        writer.close_with(&request);
        let _ = tokio::time::timeout(CLOSE_GRACE, std::future::poll_fn(|cx| writer.poll_send(&mut ws, cx))).await;
    }
    drop((ws, writer));
    let (code, reason) = closed_with.or_else(|| control.current()).unwrap_or((1006, String::new()));
    tracing::debug!(code, %reason, "disconnected");
    registry.metrics().disconnected(code);
    handler.disconnected(id, code, reason).await;
}

/// Asks for a close once the handler has answered the events read before
/// the frame that ended the connection, so that their replies go out ahead
/// of the close frame; waits no longer than the close grace period. In a
/// task of its own: awaited in the reader, its state made every idle
/// connection's task ~0.5 KiB larger (the next allocation size up).
fn close_after_replies(handler: &Handler, control: &Arc<Control>, code: u16, reason: &'static str) {
    let (handler, control) = (handler.clone(), control.clone());
    tokio::spawn(async move {
        let _ = tokio::time::timeout(CLOSE_GRACE, handler.caught_up()).await;
        control.request(code, reason);
    });
}

/// A timer that is allocated only while it runs.
struct Deadline(std::pin::Pin<Box<tokio::time::Sleep>>);

impl Deadline {
    fn after(duration: Duration) -> Deadline {
        Deadline(Box::pin(tokio::time::sleep(duration)))
    }

    /// Resolves when the deadline passes; never if there is none.
    async fn wait(deadline: &mut Option<Deadline>) {
        match deadline {
            Some(Deadline(sleep)) => sleep.await,
            None => std::future::pending().await,
        }
    }
}

/// The handler's auth decision, in progress.
type PendingAuth = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What woke the reader up.
enum Input {
    Read(Option<Result<WsMessage, tungstenite::Error>>),
    AuthTimeout,
    Verdict(Result<(), String>),
    CloseRequested((u16, String)),
    CloseTimedOut,
}

impl Input {
    fn kind(&self) -> &'static str {
        match self {
            Input::Read(_) => "read",
            Input::AuthTimeout => "auth-timeout",
            Input::Verdict(_) => "verdict",
            Input::CloseRequested(_) => "close-requested",
            Input::CloseTimedOut => "close-timed-out",
        }
    }
}

/// Decodes a data frame and feeds it to the session; the first frame fixes
/// the connection's codec (binary: ezez framing, text: JSON).
fn read(frame: Frame, codec: &mut Option<Codec>, session: &mut Session, metrics: &HandlerMetrics) -> Action {
    let kind = match frame {
        Frame::Binary(_) => Codec::Binary,
        Frame::Text(_) => Codec::Json,
    };
    let chosen = *codec.get_or_insert(kind);
    if chosen != kind {
        return Action::Ignore("frame of the other codec's type");
    }
    let size = match &frame {
        Frame::Binary(b) => b.len(),
        Frame::Text(t) => t.len(),
    };
    match Codec::decode(&frame) {
        Ok(message) => session.on_message(message, size),
        Err(error) => {
            tracing::debug!("malformed frame: {error}");
            metrics.refused(Refusal::Malformed);
            Action::Close { code: CLOSE_MALFORMED.0, reason: CLOSE_MALFORMED.1 }
        }
    }
}

/// The writing side of a connection: numbers, encodes and writes what the
/// registry queues for this client, a burst at a time with one flush; on a
/// close request, what is queued and then the close frame.
///
/// Polled by the connection's one task, beside the reads, rather than run as
/// a task of its own on a split stream: that cost a second task, the split's
/// lock and a second close-request waker per connection, all touched on
/// every echo (tests/bench/HISTORY.md).
struct Writer {
    outbox: Outbox,
    /// The connection's codec, fixed by the client's first frame (see
    /// [`read`]); what goes out before it is encoded as binary.
    codec: Option<Codec>,
    next_id: u64,
    /// A close asked for and not yet written: it goes after what is queued.
    close: Option<CloseFrame>,
    /// The close frame is written (it may still be flushing).
    close_sent: bool,
    /// Written and not yet flushed.
    unflushed: bool,
    /// The close frame went out, the socket failed, or the registry forgot
    /// the client: nothing more is written.
    done: bool,
}

impl Writer {
    fn new(outbox: Outbox) -> Writer {
        Writer { outbox, codec: None, next_id: 0, close: None, close_sent: false, unflushed: false, done: false }
    }

    /// Ends the writing with this close, after what is queued; the first
    /// close asked for wins.
    fn close_with(&mut self, (code, reason): &(u16, String)) {
        if !self.done && !self.close_sent && self.close.is_none() {
            self.close = Some(CloseFrame { code: CloseCode::from(*code), reason: reason.clone().into() });
        }
    }

    /// Awaits `work` (the handler taking an event, which may wait for room)
    /// while what is queued keeps going out. `work` comes pinned by the
    /// caller: taken by value, it was stored twice in the connection's task.
    async fn sending_while<S, T>(&mut self, ws: &mut Socket<S>, mut work: Pin<&mut impl Future<Output = T>>) -> T
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        std::future::poll_fn(|cx| match work.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(output),
            Poll::Pending => {
                let _ = self.poll_send(ws, cx);
                Poll::Pending
            }
        })
        .await
    }

    /// Writes what is queued, one burst per call; ready once the writer is
    /// done.
    fn poll_send<S>(&mut self, ws: &mut Socket<S>, cx: &mut Context<'_>) -> Poll<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if self.done {
            return Poll::Ready(());
        }
        match self.poll_burst(ws, cx) {
            Poll::Ready(Ok(Burst::More)) => {
                // Reads get their turn before the next burst.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(Ok(Burst::Waiting)) | Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Burst::Done) | Err(_)) => {
                self.done = true;
                Poll::Ready(())
            }
        }
    }

    fn poll_burst<S>(&mut self, ws: &mut Socket<S>, cx: &mut Context<'_>) -> Poll<tungstenite::Result<Burst>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut burst = Burst::Waiting;
        for _ in 0..WRITE_BURST {
            ready!(ws.poll_ready(cx))?;
            match self.outbox.poll_recv(cx) {
                Poll::Ready(Some(item)) => {
                    if matches!(item, Outbound::Ping) {
                        // The heartbeat: when a connection may give back
                        // what a big message made its buffers hold.
                        ws.release_buffers(cx)?;
                    }
                    ws.send(cx, self.encode(item))?;
                    self.unflushed = true;
                    burst = Burst::More;
                }
                Poll::Ready(None) => {
                    burst = Burst::Done;
                    break;
                }
                Poll::Pending => {
                    burst = Burst::Waiting;
                    break;
                }
            }
        }
        if burst != Burst::More && self.close.is_some() {
            // Everything queued is written: the close frame goes last.
            ready!(ws.poll_ready(cx))?;
            let frame = self.close.take().expect("checked");
            ws.send(cx, WsMessage::Close(Some(frame)))?;
            self.unflushed = true;
            self.close_sent = true;
        }
        if self.unflushed {
            ready!(ws.poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(if self.close_sent { Burst::Done } else { burst }))
    }

    fn encode(&mut self, item: Outbound) -> WsMessage {
        let codec = self.codec.unwrap_or(Codec::Binary);
        let frame = match item {
            Outbound::Event(event) => {
                self.next_id += 1;
                event.into_frame(codec, self.next_id)
            }
            Outbound::Control(message) => codec.encode(&message),
            Outbound::Raw(frame) => *frame,
            Outbound::Ping => return WsMessage::Ping(Default::default()),
        };
        WsMessage::from(frame)
    }
}

/// How a burst of writes ended.
#[derive(PartialEq, Eq)]
enum Burst {
    /// A full burst: more may be queued.
    More,
    /// Everything queued is written; woken by the next push.
    Waiting,
    /// Nothing more will be written.
    Done,
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use futures_util::StreamExt;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

    use super::*;
    use crate::registry::Registry;

    #[tokio::test]
    async fn a_close_asked_for_while_the_socket_is_full_goes_out_after_what_is_queued() {
        let registry = Registry::new(1024, usize::MAX);
        let Connection { id, outbox, .. } = registry.connect();
        // A pipe that holds 64 bytes, far less than what is queued.
        let (ours, theirs) = tokio::io::duplex(64);
        let mut ws = Socket::new(ours, WebSocketConfig::default());
        let mut peer = WebSocketStream::from_raw_socket(theirs, Role::Client, None).await;
        for _ in 0..20 {
            registry.send_control(id, Message::AuthOk);
        }
        let mut writer = Writer::new(outbox);
        writer.close_with(&(4000, "bye".into()));
        let first = poll_fn(|cx| Poll::Ready(writer.poll_send(&mut ws, cx))).await;
        assert!(first.is_pending(), "the pipe is full: the writer waits");

        let received = async {
            let mut received = Vec::new();
            while let Some(Ok(message)) = peer.next().await {
                let close = message.is_close();
                received.push(message);
                if close {
                    break;
                }
            }
            received
        };
        let writing = poll_fn(|cx| writer.poll_send(&mut ws, cx));
        let ((), received) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(writing, received) })
            .await
            .expect("the writer finishes once the peer reads");
        assert_eq!(received.len(), 21, "everything queued, then the close");
        assert!(received[..20].iter().all(|m| *m == WsMessage::from(Codec::Binary.encode(&Message::AuthOk))));
        let close = CloseFrame { code: CloseCode::from(4000), reason: "bye".into() };
        assert_eq!(received[20], WsMessage::Close(Some(close)));
    }
}
