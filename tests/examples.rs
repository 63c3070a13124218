//! The example handlers keep the exact event contracts the README promises.

use bytes::Bytes;
use ws_host::codec::{Message, Value};
use ws_host_tests::{Client, TestServer, guests, n, obj, s};

fn message(room: &str, author: &str, text: &str, seq: f64) -> Value {
    obj(&[("room", s(room)), ("author", s(author)), ("text", s(text)), ("seq", n(seq))])
}

fn nicks(names: &[&str]) -> Vec<Value> {
    vec![Value::Array(names.iter().map(|name| s(name)).collect())]
}

#[tokio::test]
async fn echo_replies_with_text_and_bytes() {
    let server = TestServer::start(guests::ECHO).await;
    let mut client = server.client("any key at all").await;
    assert_eq!(client.request("echo", vec![s("hello")]).await.args, vec![s("hello")]);
    let bytes = Value::Bytes(Bytes::from_static(b"\x00\x01\xff"));
    let reply = client.request("echoBytes", vec![bytes.clone()]).await;
    assert_eq!((reply.name.as_str(), reply.args), ("echoBytes", vec![bytes]));
    let mut empty_key = Client::connect(&server.url()).await;
    assert_eq!(empty_key.auth("").await, Message::AuthOk);
}

// The chat tests run against every build of the chat contract: a module per
// build (`chat_in_python::rejects_an_empty_nickname`), the same tests in each.
macro_rules! chat_builds {
    ($($build:ident => $wasm:path),* $(,)?) => {$(
        mod $build {
            #[tokio::test]
            async fn rooms_messages_history_and_leaving() {
                super::chat_rooms_messages_history_and_leaving($wasm).await;
            }

            #[tokio::test]
            async fn rejects_an_empty_nickname() {
                super::chat_rejects_an_empty_nickname($wasm).await;
            }
        }
    )*};
}

chat_builds!(
    chat_in_rust => ws_host_tests::guests::CHAT,
    chat_in_python => ws_host_tests::guests::CHAT_PY,
    chat_in_javascript => ws_host_tests::guests::CHAT_JS,
);

async fn chat_rooms_messages_history_and_leaving(build: &str) {
    let server = TestServer::start(build).await;
    let mut ann = server.client("ann").await;
    let mut bob = server.client("bob").await;

    assert_eq!(ann.request("join", vec![s("lobby")]).await.args, nicks(&["ann"]));
    assert_eq!(bob.request("join", vec![s("lobby")]).await.args, nicks(&["ann", "bob"]));
    let joined = ann.next_event().await;
    assert_eq!((joined.name.as_str(), joined.args), ("joined", vec![s("lobby"), s("bob")]));

    ann.send("say", vec![s("lobby"), s("hi bob")]).await;
    bob.send("say", vec![s("lobby"), s("hi ann")]).await;
    for client in [&mut ann, &mut bob] {
        let first = client.next_event().await;
        let second = client.next_event().await;
        assert_eq!(first.name, "said");
        assert_eq!(first.args, vec![message("lobby", "ann", "hi bob", 1.0)]);
        assert_eq!(second.args, vec![message("lobby", "bob", "hi ann", 2.0)]);
    }

    // Saying something in a room one is not in does nothing.
    ann.send("say", vec![s("elsewhere"), s("lost")]).await;
    let history = ann.request("history", vec![s("lobby"), n(1.0)]).await;
    assert_eq!(history.args, vec![Value::Array(vec![message("lobby", "bob", "hi ann", 2.0)])]);
    let all = ann.request("history", vec![s("lobby"), n(10.0)]).await;
    assert_eq!(
        all.args,
        vec![Value::Array(vec![message("lobby", "ann", "hi bob", 1.0), message("lobby", "bob", "hi ann", 2.0)])]
    );
    assert_eq!(ann.request("history", vec![s("elsewhere"), n(10.0)]).await.args, vec![Value::Array(vec![])]);

    bob.send("leave", vec![s("lobby")]).await;
    let left = ann.next_event().await;
    assert_eq!((left.name.as_str(), left.args), ("left", vec![s("lobby"), s("bob")]));

    // Disconnecting leaves every room.
    let mut cid = server.client("cid").await;
    cid.request("join", vec![s("lobby")]).await;
    assert_eq!(ann.next_event().await.args, vec![s("lobby"), s("cid")]);
    cid.close().await;
    let left = ann.next_event().await;
    assert_eq!((left.name.as_str(), left.args), ("left", vec![s("lobby"), s("cid")]));
    assert_eq!(ann.request("join", vec![s("lobby")]).await.args, nicks(&["ann"]));
}

async fn chat_rejects_an_empty_nickname(build: &str) {
    let server = TestServer::start(build).await;
    let mut client = Client::connect(&server.url()).await;
    assert_eq!(client.auth("").await, Message::AuthRejected { reason: "Invalid auth key".into() });
}

/// The contract is the same, so a route served by the Rust chat can be
/// swapped to the Python one, and on to the JavaScript one, with its clients
/// connected; rooms live in the host and stay, history lives in the guest
/// and starts again with each.
#[tokio::test]
async fn chat_swaps_across_languages_with_clients_connected() {
    let server = TestServer::start(guests::CHAT).await;
    let mut ann = server.client("ann").await;
    let mut bob = server.client("bob").await;
    ann.request("join", vec![s("lobby")]).await;
    bob.request("join", vec![s("lobby")]).await;
    ann.next_event().await;
    ann.send("say", vec![s("lobby"), s("in rust")]).await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(client.next_event().await.args, vec![message("lobby", "ann", "in rust", 1.0)]);
    }

    let version = server.handler.swap(std::fs::read(guests::CHAT_PY).unwrap()).await.expect("swap to Python");
    assert_eq!(version.number, 2);
    bob.send("say", vec![s("lobby"), s("in python")]).await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(client.next_event().await.args, vec![message("lobby", "bob", "in python", 1.0)]);
    }
    assert_eq!(ann.request("join", vec![s("lobby")]).await.args, nicks(&["ann", "bob"]));

    let version = server.handler.swap(std::fs::read(guests::CHAT_JS).unwrap()).await.expect("swap to JavaScript");
    assert_eq!(version.number, 3);
    ann.send("say", vec![s("lobby"), s("in javascript")]).await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(client.next_event().await.args, vec![message("lobby", "ann", "in javascript", 1.0)]);
    }
}
