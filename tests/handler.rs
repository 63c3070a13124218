//! The handler runtime over real sockets: traps and limits replace the
//! instance while every connection stays; targets, rooms, contexts and the
//! lifecycle hooks behave as the WIT says.

use ws_host::codec::{ERROR, Event, Message, Value};
use ws_host::{Config, Sandbox};
use ws_host_tests::{Client, TestServer, eventually, guests, logs, n, replies, s};

fn id_of(reply: &Event) -> u64 {
    match reply.args.as_slice() {
        [Value::BigInt(id)] => u64::try_from(*id).unwrap(),
        other => panic!("expected a client id, got {other:?}"),
    }
}

#[tokio::test]
async fn every_kind_of_guest_failure_replaces_the_instance_and_keeps_connections() {
    let config = Config {
        sandbox: Sandbox { event_deadline_ms: 200, memory_bytes: 32 << 20, ..Sandbox::default() },
        ..Config::default()
    };
    let server = TestServer::with_config(guests::FIXTURE, config).await;
    let mut victim = server.client("victim").await;
    let mut bystander = server.client("bystander").await;
    victim.send("setCtx", vec![s("kept")]).await;
    bystander.request("join", vec![s("lobby")]).await;

    for how in ["panic", "loop", "sleep", "alloc", "recurse"] {
        assert_eq!(victim.request("count", vec![]).await.args, vec![n(1.0)], "fresh instance before {how}");
        let reply = victim.request("crash", vec![s(how)]).await;
        assert_eq!(reply.name, ERROR, "{how}");
        assert_eq!(reply.args, vec![s("crash: the handler failed on this event")]);
        // Both connections still work; host-side state survived; guest state is fresh.
        assert_eq!(victim.request("getCtx", vec![]).await.args, vec![s("kept")], "{how}");
        assert_eq!(bystander.request("myRooms", vec![]).await.args, vec![Value::Array(vec![s("lobby")])]);
    }
    assert_eq!(victim.request("count", vec![]).await.args, vec![n(1.0)]);
    // The log names the limits that stopped the loop and the hoarder, and
    // the setting for each.
    let logs = logs();
    assert!(logs.contains("stopped at the deadline of 200 ms per call (raise it with `--event-deadline-ms`)"));
    assert!(logs.contains("over the limit of 33554432 bytes (raise it with `--memory-limit`)"), "{logs}");
    assert!(logs.contains("as a guest whose stack overflowed does (deep or unbounded recursion)"), "{logs}");
    // Each failure is one line; where in the guest it failed follows at
    // debug level. The guest's panic message arrives without its blank line.
    let panic =
        "handler failed, replacing its instance: wasm trap: wasm `unreachable` instruction executed handler=fixture";
    assert!(logs.lines().any(|line| line.contains(panic)), "{logs}");
    assert!(logs.contains("where it failed: error while executing at wasm backtrace:"), "{logs}");
    assert!(logs.contains("ws_host::guest: asked to panic handler=fixture stream=stderr"), "{logs}");
    assert!(!logs.contains("ws_host::guest:  handler="), "no blank guest lines: {logs}");
}

#[tokio::test]
async fn targets_reach_exactly_whom_they_name_and_only_authenticated_clients() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    // Connected but never authenticated: must never receive anything.
    let mut lurker = Client::connect(&server.url()).await;

    a.request("join", vec![s("r")]).await;
    b.request("join", vec![s("r")]).await;

    let ping = |value: f64| vec![n(value)];
    a.send("send", vec![s("me"), n(1.0)]).await;
    assert_eq!(a.next_event().await.args, ping(1.0));

    a.send("send", vec![s("all"), n(2.0)]).await;
    for client in [&mut a, &mut b, &mut c] {
        let event = client.next_event().await;
        assert_eq!((event.name.as_str(), event.args), ("ping", ping(2.0)));
    }

    a.send("send", vec![s("all-but-me"), n(3.0)]).await;
    assert_eq!(b.next_event().await.args, ping(3.0));
    assert_eq!(c.next_event().await.args, ping(3.0));

    a.send("send", vec![s("room:r"), n(4.0)]).await;
    assert_eq!(a.next_event().await.args, ping(4.0));
    assert_eq!(b.next_event().await.args, ping(4.0));

    a.send("send", vec![s("room-but-me:r"), n(5.0)]).await;
    assert_eq!(b.next_event().await.args, ping(5.0));

    // Marker: each client's next event is the marker, so nothing else slipped in.
    a.send("send", vec![s("all"), n(99.0)]).await;
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(client.next_event().await.args, ping(99.0));
    }
    // The lurker got nothing at all, and can still authenticate.
    assert_eq!(lurker.auth("late").await, Message::AuthOk);
}

#[tokio::test]
async fn contexts_rooms_and_the_client_list_live_in_the_host() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let a_id = id_of(&a.request("whoami", vec![]).await);
    let b_id = id_of(&b.request("whoami", vec![]).await);

    // on-auth-ok set the context to "fresh".
    assert_eq!(a.request("getCtx", vec![]).await.args, vec![s("fresh")]);
    a.send("setCtx", vec![s("alice")]).await;
    assert_eq!(a.request("getCtx", vec![]).await.args, vec![s("alice")]);
    assert_eq!(b.request("getCtx", vec![]).await.args, vec![s("fresh")]);

    a.request("join", vec![s("x")]).await;
    let members = b.request("join", vec![s("x")]).await;
    let ids = |ids: &[u64]| vec![Value::Array(ids.iter().map(|i| Value::BigInt((*i).into())).collect())];
    assert_eq!(members.args, ids(&[a_id, b_id]));
    a.send("leave", vec![s("x")]).await;
    assert_eq!(a.request("myRooms", vec![]).await.args, vec![Value::Array(vec![])]);
    assert_eq!(a.request("allClients", vec![]).await.args, ids(&[a_id, b_id]));

    // No reply for a function without a result: the next reply is the marker's.
    let nothing = a.send("nothing", vec![]).await;
    let marker = a.request("echoU8", vec![n(1.0)]).await;
    assert_ne!(marker.reply_to, Some(nothing));
}

#[tokio::test]
async fn the_handler_can_disconnect_a_client_and_sees_every_disconnect() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut watcher = server.client("watcher").await;
    let watcher_id = id_of(&watcher.request("whoami", vec![]).await);
    watcher.request("join", vec![s("watchers")]).await;
    let mut target = server.client("target").await;
    let target_id = id_of(&target.request("whoami", vec![]).await);

    watcher.send("kick", vec![Value::BigInt(target_id.into()), n(4000.0), s("bye")]).await;
    let ((code, reason), _) = target.closed().await;
    assert_eq!((code, reason.as_str()), (4000, "bye"));
    // on-disconnect ran with the code (the fixture pings the watchers with it).
    assert_eq!(watcher.next_event().await.args, vec![n(4000.0)]);

    let leaver = server.client("leaver").await;
    leaver.close().await;
    assert_eq!(watcher.next_event().await.args, vec![n(1005.0)]);
    // The registry forgot both (events reach the handler in order, so this
    // request runs after both disconnects).
    let all = watcher.request("allClients", vec![]).await;
    assert_eq!(all.args, vec![Value::Array(vec![Value::BigInt(watcher_id.into())])]);
}

#[tokio::test]
async fn on_auth_sees_the_request() {
    let server = TestServer::start(guests::FIXTURE).await;
    let url = format!("ws://{}/room/7?token=abc", server.addr);
    let mut client = Client::connect(&url).await;
    assert_eq!(client.auth("request").await, Message::AuthOk);
    // The fixture stored "path?query user-agent has-remote-addr" in the context.
    let facts = client.request("getCtx", vec![]).await;
    let [Value::String(facts)] = facts.args.as_slice() else { panic!("{facts:?}") };
    assert!(facts.starts_with("/room/7?token=abc "), "{facts}");
    assert!(facts.ends_with(" true"), "{facts}");
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001_and_tells_the_handler() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut a = server.client("a").await;
    let mut b = Client::connect(&server.url()).await;
    let registry = server.handler.registry().clone();
    let stopping = tokio::spawn(server.stop());
    assert_eq!(a.closed().await.0, (1001, "Server shutting down".into()));
    assert_eq!(b.closed().await.0.0, 1001);
    stopping.await.unwrap();
    assert!(registry.is_empty());
}

#[tokio::test]
async fn shutdown_answers_the_events_already_queued_before_it_closes() {
    // The first event keeps the handler busy until its deadline; the
    // second waits behind it when the server is told to stop.
    let config = Config { sandbox: Sandbox { event_deadline_ms: 200, ..Sandbox::default() }, ..Config::default() };
    let server = TestServer::with_config(guests::FIXTURE, config).await;
    let mut client = server.client("k").await;
    let stuck = client.send("crash", vec![s("sleep")]).await;
    let count = client.send("count", vec![]).await;
    let queued = || server.handler.metrics().events_in.get("count").copied();
    eventually(|| queued().map(drop).ok_or_else(|| "the count never reached the handler's queue".to_owned())).await;
    let stopping = tokio::spawn(server.stop());
    let ((code, _), seen) = client.closed().await;
    assert_eq!(code, 1001);
    let failed = vec![s("crash: the handler failed on this event")];
    assert_eq!(
        replies(seen),
        vec![(Some(stuck), ERROR.to_owned(), failed), (Some(count), "count".to_owned(), vec![n(1.0)])]
    );
    stopping.await.unwrap();
}

#[test]
fn events_of_strings_and_bytes_take_the_typed_path_and_others_the_dynamic_one() {
    use ws_host::runtime::args::{Plain, Shape, TypedCall};
    let bytes = std::fs::read(guests::FIXTURE).unwrap();
    let version = ws_host::Handler::check(ws_host_tests::runtime(), "fixture", &bytes, &Config::default()).unwrap();
    let shape = |name: &str| version.schema.incoming.get(name).unwrap().typed_call;
    let typed = |params, reply| Some(TypedCall { params, reply });
    assert_eq!(shape("echoString"), typed(Shape::Text, Some(Plain::Text)));
    assert_eq!(shape("crash"), typed(Shape::Text, None), "sender, then a string");
    assert_eq!(shape("setCtx"), typed(Shape::Text, None));
    assert_eq!(shape("echoBytes"), typed(Shape::Bytes, Some(Plain::Bytes)));
    assert_eq!(shape("labelBytes"), typed(Shape::TextAndBytes, Some(Plain::Bytes)));
    let chat = std::fs::read(guests::CHAT).unwrap();
    let chat = ws_host::Handler::check(ws_host_tests::runtime(), "chat", &chat, &Config::default()).unwrap();
    assert_eq!(chat.schema.incoming.get("say").unwrap().typed_call, typed(Shape::TwoTexts, None));
    for dynamic in ["echoU32", "echoList", "pair", "repeat", "whoami", "join", "send"] {
        assert_eq!(shape(dynamic), None, "{dynamic}");
    }
}

#[test]
fn an_outgoing_event_whose_target_is_not_the_hosts_is_refused_at_load() {
    let component = r#"(component
        (import "test:own/outgoing" (instance
            (type $where (variant (case "here") (case "there")))
            (export "where" (type $w (eq $where)))
            (export "told" (func (param "to" $w) (param "text" string)))))
        (core module $m (func (export "ping")))
        (core instance $i (instantiate $m))
        (func $ping (canon lift (core func $i "ping")))
        (instance $incoming (export "ping" (func $ping)))
        (export "test:own/incoming" (instance $incoming)))"#;
    let wasm = wat::parse_str(component).unwrap();
    let error = ws_host::Handler::check(ws_host_tests::runtime(), "own", &wasm, &Config::default()).err().unwrap();
    assert!(error.to_string().contains("`told`: an outgoing event takes `to: target` first"), "{error}");
}

#[tokio::test]
async fn outgoing_events_of_strings_and_bytes_arrive_as_sent() {
    // `told`, `told-twice`, `blob` and `labelled`: the four typed shapes.
    let server = TestServer::start(guests::FIXTURE).await;
    let mut client = server.client("k").await;
    let data = Value::Bytes(vec![0, 7, 255].into());
    client.send("tell", vec![s("h\u{e9}"), data.clone()]).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let event = client.next_event().await;
        got.push((event.name, event.args));
    }
    let text = s("h\u{e9}");
    let expected = [
        ("told", vec![text.clone()]),
        ("toldTwice", vec![text.clone(), text.clone()]),
        ("blob", vec![data.clone()]),
        ("labelled", vec![text, data]),
    ];
    assert_eq!(got, expected.map(|(name, args)| (name.to_owned(), args)));
}

#[tokio::test]
async fn a_close_the_handler_asks_for_is_always_a_valid_close_frame() {
    let server = TestServer::start(guests::FIXTURE).await;
    let mut kicker = server.client("kicker").await;
    let mut target = server.client("target").await;
    let target_id = Value::BigInt(id_of(&target.request("whoami", vec![]).await).into());

    // A code a server may not send stops the call; nobody is closed.
    for code in [999.0, 1005.0, 1015.0, 5000.0] {
        let reply = kicker.request("kick", vec![target_id.clone(), n(code), s("x")]).await;
        assert_eq!(reply.name, ERROR, "{code}");
    }
    assert!(logs().contains("close code 1005 may not be sent by a server"), "{}", logs());
    assert_eq!(target.request("whoami", vec![]).await.args, vec![target_id.clone()]);

    // A reason longer than a close frame holds is cut at a character boundary.
    kicker.send("kick", vec![target_id, n(4001.0), s(&"é".repeat(70))]).await;
    let ((code, reason), _) = target.closed().await;
    assert_eq!((code, reason), (4001, "é".repeat(61)));
}
