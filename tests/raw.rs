//! Raw handlers: whole WebSocket messages in and out, no ezez protocol.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use ws_host_tests::{STEP, TestServer, guests};

#[tokio::test]
async fn the_raw_echo_sends_every_message_back_as_it_came() {
    let server = TestServer::start(guests::RAW_ECHO).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.url()).await.unwrap();
    let messages = [
        Message::Text("hello, no protocol".into()),
        Message::Binary(bytes::Bytes::from_static(b"\x00\x01\xff")),
        Message::Text(String::new().into()),
        Message::Binary(vec![42u8; 300_000].into()),
    ];
    for message in messages {
        ws.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(STEP, ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(echoed, message);
    }
    // Connections count as clients of the handler while open.
    assert_eq!(server.handler.registry().len(), 1);
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_raw_message_over_the_max_payload_closes_with_1009() {
    let config = ws_host::Config { max_payload_bytes: 1000, ..Default::default() };
    let server = TestServer::with_config(guests::RAW_ECHO, config).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.url()).await.unwrap();
    ws.send(Message::Text("x".repeat(2000).into())).await.unwrap();
    match tokio::time::timeout(STEP, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
}
