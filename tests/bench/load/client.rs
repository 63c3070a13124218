//! The generator's side of a connection: connect, the ezez handshake, and
//! the frames it sends and reads.

use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_host::codec::{Codec, Event, Frame, Message, Value};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a connection to `path`; with `ezez`, authenticates and waits for
/// auth-ok. Small buffers, so ten thousand idle ones stay cheap here too.
pub async fn connect(addr: SocketAddr, path: &str, ezez: bool) -> Ws {
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let url = format!("ws://{addr}{path}");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}{path}: {e}"));
    if ezez {
        let auth = Message::Auth { key: "bench".into(), version: Value::Number(1.0) };
        ws.send(frame(&auth)).await.unwrap();
        match next_data(&mut ws).await {
            Some(Ok(reply)) if matches!(decode(&reply), Some(Message::AuthOk)) => {}
            other => panic!("no auth-ok from {addr}{path}: {other:?}"),
        }
    }
    ws
}

/// The next message that is not a ping or a pong: the server's heartbeat
/// pings a connection it has not heard from, one still in its handshake
/// included, and tungstenite answers the ping itself.
pub async fn next_data<S, E>(stream: &mut S) -> Option<Result<WsMessage, E>>
where
    S: Stream<Item = Result<WsMessage, E>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => return other,
        }
    }
}

/// An ezez event frame.
pub fn event(name: &str, id: u64, args: Vec<Value>) -> WsMessage {
    frame(&Message::Event(Event { name: name.into(), id, reply_to: None, args }))
}

pub fn frame(message: &Message) -> WsMessage {
    Codec::Binary.encode(message).into()
}

pub fn decode(message: &WsMessage) -> Option<Message> {
    match message {
        WsMessage::Binary(bytes) => Codec::decode(&Frame::Binary(bytes.clone())).ok(),
        _ => None,
    }
}

/// The request an echo client sends: an ezez `echo` event, or the bare
/// payload for the bare server.
pub fn echo_request(ezez: bool, id: u64, text: &str) -> WsMessage {
    if ezez { event("echo", id, vec![text.into()]) } else { WsMessage::Binary(Bytes::copy_from_slice(text.as_bytes())) }
}
