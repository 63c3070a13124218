//! The ezez protocol over real sockets: auth handshake, ids, replies,
//! messages before auth, error replies, malformed input, the JSON codec.

use tokio_tungstenite::tungstenite::Message as WsMessage;
use ws_host::codec::{ERROR, Event, Message, Value};
use ws_host::{BeforeAuth, Config, Sandbox};
use ws_host_tests::{Client, STEP, TestServer, guests, logs, n, replies, runtime, s};

fn auth_version(version: Value) -> Message {
    Message::Auth { key: "k".into(), version }
}

#[tokio::test]
async fn auth_ok_then_replies_with_per_connection_ids() {
    let server = TestServer::start(guests::ECHO).await;
    let mut client = server.client("anything").await;
    let first = client.request("echo", vec![s("hi")]).await;
    assert_eq!(first, Event { name: "echo".into(), id: 1, reply_to: Some(1), args: vec![s("hi")] });
    let second = client.request("echo", vec![s("h\u{e9}llo")]).await;
    assert_eq!((second.id, second.reply_to), (2, Some(2)));

    // Another connection counts from 1 again.
    let mut other = server.client("x").await;
    assert_eq!(other.request("echo", vec![s("x")]).await.id, 1);
    client.close().await;
    other.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_version_other_than_1_is_rejected_with_the_reference_reason() {
    let server = TestServer::start(guests::ECHO).await;
    let mut client = Client::connect(&server.url()).await;
    client.send_message(&auth_version(n(2.0))).await;
    let ((code, _), seen) = client.closed().await;
    assert_eq!(seen, vec![Message::AuthRejected { reason: "Protocol version mismatch, wanted 1, got 2".into() }]);
    assert_eq!(code, 1008);
}

#[tokio::test]
async fn the_handler_decides_on_the_key() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut client = Client::connect(&server.url()).await;
    assert_eq!(client.auth("reject").await, Message::AuthRejected { reason: "Go away".into() });
    assert_eq!(client.closed().await.0.0, 1008);

    let chat = TestServer::start(guests::CHAT).await;
    let mut client = Client::connect(&chat.url()).await;
    assert_eq!(client.auth("").await, Message::AuthRejected { reason: "Invalid auth key".into() });
}

#[tokio::test]
async fn a_long_rejection_reason_reaches_the_client_whole_up_to_the_max_payload() {
    let config = Config { max_payload_bytes: 64 << 10, ..Config::default() };
    let server = TestServer::with_config(guests::FIXTURE, config).await;
    // The auth-rejected message carries it whole; the close frame, which
    // holds 123 bytes, carries its start.
    let mut client = Client::connect(&server.url()).await;
    let reason = "r".repeat(200);
    assert_eq!(client.auth("reject-at-length:200").await, Message::AuthRejected { reason: reason.clone() });
    assert_eq!(client.closed().await.0, (1008, reason[..123].to_owned()));
    // Over the max payload it is not sent at all.
    let mut client = Client::connect(&server.url()).await;
    let refused = Message::AuthRejected { reason: "Auth check failed".into() };
    assert_eq!(client.auth(&format!("reject-at-length:{}", 100 << 10)).await, refused);
    assert!(
        logs().contains("auth rejection refused: about 102400 bytes, over the max payload of 65536 bytes"),
        "{}",
        logs()
    );
}

#[tokio::test]
async fn an_auth_check_that_traps_rejects_and_the_server_goes_on() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut client = Client::connect(&server.url()).await;
    assert_eq!(client.auth("trap").await, Message::AuthRejected { reason: "Auth check failed".into() });
    let mut good = server.client("fine").await;
    assert_eq!(good.request("echoString", vec![s("still here")]).await.args, vec![s("still here")]);
}

#[tokio::test]
async fn no_auth_frame_in_time_is_an_auth_timeout() {
    let config = Config { auth_timeout_ms: 300, ..Config::default() };
    let server = TestServer::with_config(guests::ECHO, config).await;
    let mut client = Client::connect(&server.url()).await;
    let ((code, _), seen) = client.closed().await;
    assert_eq!(seen, vec![Message::AuthRejected { reason: "Auth timeout".into() }]);
    assert_eq!(code, 1008);
}

#[tokio::test]
async fn only_one_auth_attempt_per_connection() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut client = server.client("first").await;
    client.send_message(&Message::Auth { key: "reject".into(), version: n(1.0) }).await;
    // The second auth is ignored: the next thing we hear is our reply.
    let reply = client.request("echoU8", vec![n(7.0)]).await;
    assert_eq!(reply.args, vec![n(7.0)]);
}

#[tokio::test]
async fn events_before_auth_are_ignored_by_default() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut client = Client::connect(&server.url()).await;
    client.send_message(&Message::Auth { key: "slow".into(), version: n(1.0) }).await;
    let early = client.send("echoU8", vec![n(1.0)]).await;
    assert_eq!(client.recv().await, Message::AuthOk);
    let late = client.request("echoU8", vec![n(2.0)]).await;
    assert_eq!(late.args, vec![n(2.0)]);
    assert_ne!(late.reply_to, Some(early));
}

#[tokio::test]
async fn events_before_auth_can_be_queued_until_auth_ok() {
    let config = Config { messages_before_auth: BeforeAuth::Queue, ..Config::default() };
    let server = TestServer::with_config(guests::FIXTURE, config).await;
    let mut client = Client::connect(&server.url()).await;
    client.send_message(&Message::Auth { key: "slow".into(), version: n(1.0) }).await;
    let a = client.send("echoU8", vec![n(1.0)]).await;
    let b = client.send("echoU8", vec![n(2.0)]).await;
    assert_eq!(client.recv().await, Message::AuthOk);
    assert_eq!(client.reply_to(a).await.args, vec![n(1.0)]);
    assert_eq!(client.reply_to(b).await.args, vec![n(2.0)]);
}

#[tokio::test]
async fn a_full_pre_auth_queue_closes_with_1008() {
    let config = Config { messages_before_auth: BeforeAuth::Queue, pre_auth_queue_bytes: 64, ..Config::default() };
    let server = TestServer::with_config(guests::FIXTURE, config).await;
    let mut client = Client::connect(&server.url()).await;
    client.send_message(&Message::Auth { key: "slow".into(), version: n(1.0) }).await;
    client.send("echoString", vec![s(&"x".repeat(100))]).await;
    let ((code, reason), _) = client.closed().await;
    assert_eq!((code, reason.as_str()), (1008, "Pre-auth queue full"));
}

#[tokio::test]
async fn events_before_auth_can_be_accepted() {
    let config = Config { messages_before_auth: BeforeAuth::Accept, ..Config::default() };
    let server = TestServer::with_config(guests::ECHO, config).await;
    let mut client = Client::connect(&server.url()).await;
    assert_eq!(client.request("echo", vec![s("early")]).await.args, vec![s("early")]);
}

#[tokio::test]
async fn nothing_is_handled_after_a_rejection() {
    let config = Config { messages_before_auth: BeforeAuth::Queue, ..Config::default() };
    let server = TestServer::with_config(guests::FIXTURE, config).await;
    let mut client = Client::connect(&server.url()).await;
    client.send_message(&Message::Auth { key: "reject".into(), version: n(1.0) }).await;
    client.send("count", vec![]).await;
    let (_, seen) = client.closed().await;
    assert_eq!(seen, vec![Message::AuthRejected { reason: "Go away".into() }]);
    // The queued `count` never ran: the first count another client sees is 1.
    let mut other = server.client("ok").await;
    assert_eq!(other.request("count", vec![]).await.args, vec![n(1.0)]);
}

#[tokio::test]
async fn events_that_do_not_fit_get_an_error_reply_and_the_connection_stays() {
    let server = TestServer::start(guests::ECHO).await;
    let mut client = server.client("k").await;
    let cases = [
        ("echo", vec![n(5.0)], "echo: argument 1 (text): expected string, got number"),
        ("echo", vec![], "echo: expected 1 argument (text), got 0"),
        ("echo", vec![s("a"), s("b")], "echo: expected 1 argument (text), got 2"),
        ("nope", vec![], "unknown event \"nope\" (this handler accepts: echo, echoBytes)"),
        ("ezez-ws::whatever", vec![], "\"ezez-ws::whatever\" is a reserved event name"),
        ("echoBytes", vec![s("x")], "echoBytes: argument 1 (data): expected bytes, got string"),
    ];
    for (name, args, expected) in cases {
        let id = client.send(name, args).await;
        let reply = client.reply_to(id).await;
        assert_eq!((reply.name.as_str(), reply.args), (ERROR, vec![s(expected)]), "{name}");
    }
    assert_eq!(client.request("echo", vec![s("ok")]).await.args, vec![s("ok")]);
}

#[tokio::test]
async fn a_malformed_frame_closes_with_1002_and_others_are_unaffected() {
    let server = TestServer::start(guests::ECHO).await;
    let mut good = server.client("good").await;
    for garbage in [&b"9f\0short\0"[..], b"4q\0test\0", b"2f\0\xff\xfe\0", b"3j\0abc\0", b""] {
        let mut bad = server.client("bad").await;
        bad.send_frame(WsMessage::Binary(bytes::Bytes::copy_from_slice(garbage))).await;
        let ((code, reason), _) = bad.closed().await;
        assert_eq!((code, reason.as_str()), (1002, "Malformed message"), "{garbage:?}");
    }
    assert_eq!(good.request("echo", vec![s("fine")]).await.args, vec![s("fine")]);
}

#[tokio::test]
async fn replies_to_the_events_before_a_malformed_frame_go_out_ahead_of_the_close() {
    // The first event keeps the handler busy until its deadline: the
    // malformed frame is read while both events still wait for it.
    let sandbox = Sandbox { event_deadline_ms: 200, ..Sandbox::default() };
    let config = Config { sandbox, ..Config::default() };
    let server = TestServer::named("replies-then-close", guests::FIXTURE, config, runtime()).await;
    let mut client = server.client("k").await;
    let stuck = client.send("crash", vec![s("sleep")]).await;
    let count = client.send("count", vec![]).await;
    client.send_frame(WsMessage::Binary(bytes::Bytes::from_static(b"4q\0test\0"))).await;
    let ((code, _), seen) = client.closed().await;
    assert_eq!(code, 1002);
    let failed = vec![s("crash: the handler failed on this event")];
    assert_eq!(
        replies(seen),
        vec![(Some(stuck), ERROR.to_owned(), failed), (Some(count), "count".to_owned(), vec![n(1.0)])]
    );
}

#[tokio::test]
async fn a_message_over_the_max_payload_closes_with_1009() {
    let config = Config { max_payload_bytes: 1024, ..Config::default() };
    let server = TestServer::with_config(guests::ECHO, config).await;
    let mut client = server.client("k").await;
    client.send("echo", vec![s(&"x".repeat(2000))]).await;
    assert_eq!(client.closed().await.0.0, 1009);
}

#[tokio::test]
async fn pings_keep_clients_that_answer_and_close_silent_ones() {
    let config = Config { ping_interval_ms: 50, ..Config::default() };
    let server = TestServer::with_config(guests::ECHO, config).await;
    let mut silent = server.client("silent").await;
    // From here the listener only answers pings, through ten rounds; the
    // silent client, not read at all, cannot last more than two.
    let mut listener = server.client("listener").await;
    listener.answer_pings(10).await;
    // At once: the listener's last pong goes out with this request.
    assert_eq!(listener.request("echo", vec![s("still here")]).await.args, vec![s("still here")]);
    assert_eq!(silent.closed().await.0, (1001, "No answer to pings".into()));
}

#[tokio::test]
async fn big_messages_kept_in_flight_across_heartbeats_arrive_whole_and_in_order() {
    // At each heartbeat a connection whose buffers a big message grew swaps
    // in a fresh protocol context, where the old one holds nothing (see
    // `Socket::release_buffers`). With ten requests in flight all along,
    // some of them 16 KiB, the heartbeats come while replies are queued and
    // requests arrive: a swap with a reply not yet flushed loses it (checked
    // to fail so). Frames cut at every byte are the socket's own tests.
    let config = Config { ping_interval_ms: 20, ..Config::default() };
    let server = TestServer::with_config(guests::ECHO, config).await;
    let mut client = server.client("k").await;
    let mut round = 0;
    while client.pings < 8 {
        let texts: Vec<String> = (0..10)
            .map(|i| if i % 3 == 0 { format!("{round}:{i}:{}", "b".repeat(16 * 1024)) } else { format!("{round}:{i}") })
            .collect();
        let mut ids = Vec::new();
        for text in &texts {
            ids.push(client.send("echo", vec![s(text)]).await);
        }
        for (id, text) in ids.into_iter().zip(&texts) {
            // Bounded here: the pings alone keep the client's reads from timing out.
            let reply = tokio::time::timeout(STEP, client.reply_to(id)).await.expect("the reply, not lost");
            assert_eq!(reply.args, vec![s(text)], "round {round}");
        }
        round += 1;
    }
    client.close().await;
}

#[tokio::test]
async fn a_client_whose_events_wait_for_a_busy_handler_is_not_taken_for_silent() {
    // The handler sleeps 600 ms (twelve rounds); with a queue of one, the
    // server stops reading this client's frames, its pongs among them.
    let sandbox = Sandbox { event_deadline_ms: 600, event_queue: 1, ..Sandbox::default() };
    let config = Config { ping_interval_ms: 50, sandbox, ..Config::default() };
    let server = TestServer::named("held-back", guests::FIXTURE, config, runtime()).await;
    let mut client = server.client("k").await;
    let stuck = client.send("crash", vec![s("sleep")]).await;
    let counts = [client.send("count", vec![]).await, client.send("count", vec![]).await];
    assert_eq!(client.reply_to(stuck).await.name, ERROR);
    for (id, expected) in counts.into_iter().zip([1.0, 2.0]) {
        assert_eq!(client.reply_to(id).await.args, vec![n(expected)], "served after the wait, not closed");
    }
    assert!(client.pings > 2, "rounds went by during the wait: {}", client.pings);
}

#[tokio::test]
async fn text_frames_speak_plain_json() {
    let server = TestServer::start(guests::ECHO).await;
    let mut client = Client::connect(&server.url()).await;
    client.send_frame(WsMessage::Text(r#"["ezez-ws::auth","key",1]"#.into())).await;
    assert_eq!(client.next_text().await, r#"["ezez-ws::auth-ok"]"#);
    client.send_frame(WsMessage::Text(r#"["echo",1,null,"hi"]"#.into())).await;
    assert_eq!(client.next_text().await, r#"["echo",1,1,"hi"]"#);
    client.send_frame(WsMessage::Text(r#"["echoBytes",2,null,[1,2,255]]"#.into())).await;
    assert_eq!(client.next_text().await, r#"["echoBytes",2,2,[1,2,255]]"#);
}

#[tokio::test]
async fn text_frames_on_a_binary_connection_are_ignored() {
    let server = TestServer::start(guests::ECHO).await;
    let mut client = server.client("k").await;
    client.send_frame(WsMessage::Text(r#"["echo",9,null,"json"]"#.into())).await;
    let reply = client.request("echo", vec![s("binary")]).await;
    assert_eq!(reply.args, vec![s("binary")]);
}
