//! The sandbox holds: a handler that floods, sends or replies a giant
//! message, burns its fuel, or spreads its memory over many memories and
//! tables is stopped at the limit and logged; a client that never reads is
//! dropped. Throughout, a well-behaved client keeps getting its replies.

use std::time::Duration;

use ws_host::codec::{ERROR, Event, Value};
use ws_host::{Config, Handler, Sandbox};
use ws_host_tests::{STEP, TestServer, eventually, fuel_runtime, guests, logs, n, runtime, s};

fn config(sandbox: Sandbox) -> Config {
    Config { sandbox, ..Config::default() }
}

fn failed(reply: &Event, event: &str) {
    assert_eq!(reply.name, ERROR, "{reply:?}");
    assert_eq!(reply.args, vec![s(&format!("{event}: the handler failed on this event"))]);
}

/// Log lines of one handler that contain `text`.
fn logged(handler: &str, text: &str) -> bool {
    logs().lines().any(|line| line.contains(&format!("handler={handler}")) && line.contains(text))
}

#[tokio::test]
async fn a_flood_of_messages_is_stopped_at_the_limit() {
    let sandbox = Sandbox { max_sends_per_event: 100, ..Sandbox::default() };
    let server = TestServer::named("flooder", guests::FIXTURE, config(sandbox), runtime()).await;
    let mut flooder = server.client("flooder").await;
    let mut bystander = server.client("bystander").await;

    let blast = flooder.send("blast", vec![n(1000.0), n(10.0)]).await;
    failed(&flooder.reply_to(blast).await, "blast");
    assert!(logged("flooder", "flood: more than 100 outgoing events in one call"), "{}", logs());
    assert!(logged("flooder", "event=blast"), "the log names the event");
    // The 100 allowed went out; the bystander got them and still gets replies.
    for _ in 0..100 {
        assert_eq!(bystander.next_event().await.name, "blob");
    }
    assert_eq!(bystander.request("echoU8", vec![n(3.0)]).await.args, vec![n(3.0)]);
    assert_eq!(flooder.request("echoU8", vec![n(4.0)]).await.args, vec![n(4.0)]);
}

#[tokio::test]
async fn a_giant_message_is_refused() {
    let config = Config { max_payload_bytes: 64 << 10, ..Config::default() };
    let server = TestServer::named("giant", guests::FIXTURE, config, runtime()).await;
    let mut client = server.client("k").await;
    let blast = client.send("blast", vec![n(1.0), n(f64::from(100 << 10))]).await;
    failed(&client.reply_to(blast).await, "blast");
    assert!(logged("giant", "`blob` of about 102400 bytes is over the max payload of 65536 bytes"), "{}", logs());
    assert_eq!(client.request("echoU8", vec![n(5.0)]).await.args, vec![n(5.0)]);

    // A reply is held to the same limit; the call went well, so the
    // instance stays (its count goes on).
    assert_eq!(client.request("count", vec![]).await.args, vec![n(1.0)]);
    let kib = "x".repeat(1024);
    let reply = client.request("repeat", vec![s(&kib), n(100.0)]).await;
    assert_eq!(reply.name, ERROR);
    assert_eq!(reply.args, vec![s("repeat: the reply is over the max payload of 65536 bytes")]);
    // The reply's size counts its name with its arguments, as its frame holds both.
    assert!(logged("giant", "reply refused: about 102406 bytes, over the max payload of 65536 bytes"), "{}", logs());
    assert_eq!(client.request("repeat", vec![s(&kib), n(60.0)]).await.args, vec![s(&kib.repeat(60))]);
    assert_eq!(client.request("count", vec![]).await.args, vec![n(2.0)]);
}

#[tokio::test]
async fn fuel_stops_a_busy_loop_long_before_the_deadline() {
    let sandbox = Sandbox { fuel: Some(50_000_000), event_deadline_ms: 60_000, ..Sandbox::default() };
    let server = TestServer::named("burner", guests::FIXTURE, config(sandbox.clone()), fuel_runtime()).await;
    let mut client = server.client("k").await;
    let started = std::time::Instant::now();
    failed(&client.request("crash", vec![s("loop")]).await, "crash");
    assert!(started.elapsed() < Duration::from_secs(30), "stopped by fuel, not by the 60 s deadline");
    // The log names the limit (the handler's name ends the multi-line entry).
    assert!(logs().contains("stopped when it had used its 50000000 units of fuel per call"), "{}", logs());
    assert_eq!(client.request("count", vec![]).await.args, vec![n(1.0)], "a fresh instance");

    // A fuel limit on an engine without fuel is a clear load error.
    let error = Handler::load(runtime(), "no-fuel", &std::fs::read(guests::FIXTURE).unwrap(), &config(sandbox))
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("a fuel limit needs a runtime with fuel enabled"), "{error}");
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_the_rest_go_on() {
    let config = Config { outbound_queue: 8, ..Config::default() };
    a_sleeper_is_dropped("slow", config, 64 << 10, "outbound queue full (8 messages queued)").await;
}

#[tokio::test]
async fn big_messages_fill_a_queue_by_its_bytes_long_before_its_length() {
    let config = Config { outbound_queue_bytes: 1 << 20, ..Config::default() };
    a_sleeper_is_dropped("slow-big", config, 256 << 10, "bytes queued): disconnecting").await;
}

/// Blasts blobs of `size` bytes to everyone until a client that stopped
/// reading is dropped; the log says `why`, and a reader goes on.
async fn a_sleeper_is_dropped(name: &str, config: Config, size: u32, why: &str) {
    let server = TestServer::named(name, guests::FIXTURE, config, runtime()).await;
    let mut sleeper = server.client("sleeper").await;
    let sleeper_id = match sleeper.request("whoami", vec![]).await.args.as_slice() {
        [Value::BigInt(id)] => *id,
        other => panic!("{other:?}"),
    };
    let mut reader = server.client("reader").await;
    // The sleeper stops reading; blasts fill its socket, then its queue.
    // Three blobs a blast fit a reader's queue even if all are queued
    // before its writer sends one (four of 256 KiB and their headers would
    // not fit 1 MiB).
    let deadline = tokio::time::Instant::now() + STEP * 2;
    loop {
        reader.send("blast", vec![n(3.0), n(f64::from(size))]).await;
        while reader.has_backlog() {
            reader.next_event().await;
        }
        let everyone = reader.request("allClients", vec![]).await;
        if !everyone.args[0].contains(&Value::BigInt(sleeper_id)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the sleeper was never dropped");
    }
    assert!(logs().contains(why), "{}", logs());
    assert!(logs().contains("disconnecting a client that does not read"), "{}", logs());
    assert_eq!(reader.request("echoU8", vec![n(9.0)]).await.args, vec![n(9.0)]);
    drop(sleeper);
}

trait Contains {
    fn contains(&self, value: &Value) -> bool;
}

impl Contains for Value {
    fn contains(&self, value: &Value) -> bool {
        matches!(self, Value::Array(items) if items.contains(value))
    }
}

#[tokio::test]
async fn the_real_date_is_hidden_unless_allowed() {
    let hidden = TestServer::named("no-clock", guests::FIXTURE, Config::default(), runtime()).await;
    let mut client = hidden.client("k").await;
    assert_eq!(client.request("now", vec![]).await.args, vec![Value::BigInt(0)]);
    // The monotonic clock still runs: sleeping works (the `slow` auth sleeps).
    let mut slow = ws_host_tests::Client::connect(&hidden.url()).await;
    assert_eq!(slow.auth("slow").await, ws_host::codec::Message::AuthOk);

    let allowed = config(Sandbox { allow_wall_clock: true, ..Sandbox::default() });
    let shown = TestServer::named("clock", guests::FIXTURE, allowed, runtime()).await;
    let mut client = shown.client("k").await;
    let now = match client.request("now", vec![]).await.args.as_slice() {
        [Value::BigInt(seconds)] => *seconds,
        other => panic!("{other:?}"),
    };
    assert!(now > 1_700_000_000, "the real date: {now}");
}

#[tokio::test]
async fn guest_code_run_while_instantiating_is_sandboxed_too() {
    // A core start function that waits on a WASI timer, loaded from async
    // code: guest code never runs on a thread that drives tokio tasks.
    let blocking = std::fs::read(guests::BLOCKING_START).unwrap();
    let handler = Handler::load(runtime(), "blocking-start", &blocking, &Config::default()).expect("loads");
    assert_eq!(handler.version().schema.event_names(), ["ping"]);
    let swapped = handler.swap(blocking.clone()).await.expect("swaps");
    assert_eq!(swapped.number, 2);
    let checked = Handler::check(runtime(), "blocking-start", &blocking, &Config::default()).expect("checks");
    assert_eq!(checked.schema.event_names(), ["ping"]);

    // One that never returns is stopped by the event deadline and refused.
    let sandbox = Sandbox { event_deadline_ms: 200, ..Sandbox::default() };
    let spinning = std::fs::read(guests::SPINNING_START).unwrap();
    let error = Handler::load(runtime(), "spinning-start", &spinning, &config(sandbox)).err().expect("refused");
    let error = error.to_string();
    assert!(error.starts_with("handler spinning-start failed while starting:"), "{error}");
    assert!(error.contains("stopped at the deadline of 200 ms per call"), "{error}");
    // Swapped in, it is refused and the running version keeps serving.
    let error = handler.swap(spinning).await.expect_err("refused").to_string();
    assert!(error.contains("stopped at the deadline of 1000 ms per call"), "{error}");
    assert_eq!(handler.version().number, 2);
}

#[tokio::test]
async fn a_handler_that_logs_in_a_loop_is_held_to_its_lines_per_second() {
    let sandbox = Sandbox { max_log_lines_per_second: 50, ..Sandbox::default() };
    let server = TestServer::named("chatty", guests::FIXTURE, config(sandbox), runtime()).await;
    let mut client = server.client("k").await;
    client.send("chatter", vec![n(5000.0)]).await;
    // The next reply comes after the chatter call has finished.
    assert_eq!(client.request("echoU8", vec![n(1.0)]).await.args, vec![n(1.0)]);
    let logs = logs();
    let kept = logs.lines().filter(|line| line.contains("chatter ") && line.contains("chatty")).count();
    // One call takes well under a second; should it straddle a second's
    // start, two seconds' worth get through.
    assert!((50..=100).contains(&kept), "{kept} lines kept");
    assert!(logged("chatty", "more than 50 log lines in a second: the rest of this second's are dropped"), "{logs}");
    // Both ways in are kept: the host's `log` and stdout.
    assert!(logs.contains("chatter 0") && logs.contains("chatter 1"), "{logs}");
}

#[tokio::test]
async fn a_handler_that_hoards_host_resources_is_stopped_and_its_instance_replaced() {
    // A deadline far off, so that the handle limit is what stops the call.
    let sandbox = Sandbox { event_deadline_ms: 30_000, ..Sandbox::default() };
    let server = TestServer::named("hoarder", guests::HOARDER, config(sandbox), runtime()).await;
    let mut client = server.client("k").await;
    // Each call takes timers until wasmtime refuses one more handle; the
    // instance, and every timer it held, goes.
    for _ in 0..2 {
        failed(&client.request("hoard", vec![]).await, "hoard");
    }
    assert!(logs().contains("store handle limit exceeded"), "{}", logs());
    assert_eq!(server.handler.metrics().traps, 2);
}

#[tokio::test]
async fn the_memory_limit_holds_for_all_of_a_handlers_memories_and_tables_together() {
    // 4 MiB for the handler, which has four memories and a table: 1 MiB in
    // each memory fits, 2 MiB in each does not, though each would alone.
    let sandbox = Sandbox { memory_bytes: 4 << 20, ..Sandbox::default() };
    let server = TestServer::named("spreader", guests::SPREADER, config(sandbox), runtime()).await;
    let mut client = server.client("k").await;
    let mut bystander = server.client("b").await;
    assert_eq!(client.request("spread", vec![n(16.0)]).await.args, vec![n(16.0)]);
    assert_eq!(server.handler.metrics().memory_bytes, 4 << 20);
    failed(&client.request("spread", vec![n(16.0)]).await, "spread");
    assert!(logged("spreader", "refused growth to 5242880 bytes, over the limit of 4194304"), "{}", logs());
    // A fresh instance: its memories start empty.
    assert_eq!(client.request("spread", vec![n(8.0)]).await.args, vec![n(8.0)]);

    // A table's elements take the host's memory too (8 bytes each here):
    // 2 MiB of memories and 1.5 MiB of table fit, 2.5 MiB of table does not.
    assert_eq!(client.request("stretch", vec![n(196_608.0)]).await.args, vec![n(196_608.0)]);
    failed(&client.request("stretch", vec![n(131_072.0)]).await, "stretch");
    assert_eq!(client.request("stretch", vec![n(327_680.0)]).await.args, vec![n(327_680.0)]);
    assert_eq!(server.handler.metrics().traps, 2);
    assert_eq!(bystander.request("spread", vec![n(1.0)]).await.args, vec![n(1.0)]);
}

#[tokio::test]
async fn a_reply_of_millions_of_list_items_is_stopped_before_the_host_holds_them() {
    let server = TestServer::named("copier", guests::COPIER, Config::default(), runtime()).await;
    let mut client = server.client("k").await;
    let reply = client.request("copy", vec![n(65_536.0)]).await;
    assert_eq!(reply.args, vec![Value::Bytes(vec![0; 65_536].into())]);
    // 12 MB of the guest's memory, within its limit, but a value per byte in
    // the host: hundreds of MiB, over the bound of 128 MiB per call.
    failed(&client.request("copy", vec![n(12_000_000.0)]).await, "copy");
    let bound = "it handed the host more than 134217728 bytes of values in one call";
    assert!(logged("copier", bound), "{}", logs());
    assert_eq!(client.request("copy", vec![n(8.0)]).await.args, vec![Value::Bytes(vec![0; 8].into())]);

    // The bound grows with the max message size: a reply that fits it gets
    // through, if the operator allows messages that big.
    let big = Config { max_payload_bytes: 16 << 20, ..Config::default() };
    let server = TestServer::named("copier-16m", guests::COPIER, big, runtime()).await;
    let mut client = server.client("k").await;
    let reply = client.request("copy", vec![n(12_000_000.0)]).await;
    assert_eq!(reply.args, vec![Value::Bytes(vec![0; 12_000_000].into())]);
}

#[tokio::test]
async fn a_handler_with_a_hundred_memories_is_refused() {
    // Each memory reserves gigabytes of the host's address space, even empty.
    let memories = "(memory 0) ".repeat(100);
    let component = format!(
        r#"(component
            (core module $m {memories} (func (export "ping")))
            (core instance $i (instantiate $m))
            (func $ping (canon lift (core func $i "ping")))
            (instance $incoming (export "ping" (func $ping)))
            (export "test:memories/incoming" (instance $incoming)))"#
    );
    let wasm = wat::parse_str(component).unwrap();
    let error = Handler::load(runtime(), "memories", &wasm, &Config::default()).err().expect("refused").to_string();
    assert!(error.contains("at most 16 core instances, 16 linear memories and 64 tables: resource limit exceeded: memory count too high"), "{error}");
}

#[tokio::test]
async fn what_a_handler_keeps_in_the_host_is_bounded_per_client() {
    let sandbox = Sandbox { max_context_bytes: 1024, max_rooms_per_client: 3, ..Sandbox::default() };
    let server = TestServer::named("keeper", guests::FIXTURE, config(sandbox), runtime()).await;
    let mut client = server.client("k").await;

    // A context over the limit stops the call and leaves the last one.
    client.send("setCtx", vec![s(&"c".repeat(1024))]).await;
    failed(&client.request("setCtx", vec![s(&"c".repeat(1025))]).await, "setCtx");
    assert!(logged("keeper", "a context of 1025 bytes is over the limit of 1024 bytes per client"), "{}", logs());
    assert_eq!(client.request("getCtx", vec![]).await.args, vec![s(&"c".repeat(1024))]);

    // Rooms: up to the limit, then refused; rejoining one is no new room.
    for room in ["a", "b", "c"] {
        client.request("join", vec![s(room)]).await;
    }
    failed(&client.request("join", vec![s("d")]).await, "join");
    assert!(logged("keeper", "is in 3 rooms, the limit per client"), "{}", logs());
    client.request("join", vec![s("a")]).await;
    let rooms = vec![s("a"), s("b"), s("c")];
    assert_eq!(client.request("myRooms", vec![]).await.args, vec![Value::Array(rooms)]);

    // A room's name is bounded too.
    client.send("leave", vec![s("c")]).await;
    let long = "r".repeat(ws_host::MAX_ROOM_NAME_BYTES + 1);
    failed(&client.request("join", vec![s(&long)]).await, "join");
    assert!(logged("keeper", "a room name of 257 bytes is over the limit of 256 bytes"), "{}", logs());
}

#[tokio::test]
async fn no_network_files_or_environment() {
    let server = TestServer::named("walled", guests::FIXTURE, Config::default(), runtime()).await;
    let mut client = server.client("k").await;
    let tried = client.request("escape", vec![]).await.args;
    let expected = ["listen: PermissionDenied", "connect: PermissionDenied", "file: NotFound", "env: 0"];
    assert_eq!(tried, vec![Value::Array(expected.map(s).to_vec())]);
}

#[tokio::test]
async fn events_bigger_than_the_queue_budget_still_pass_one_at_a_time() {
    // A budget of one byte: every event is bigger, and each must still get
    // through alone, in order, with the budget given back each time.
    let sandbox = Sandbox { event_queue_bytes: 1, ..Sandbox::default() };
    let server = TestServer::named("narrow", guests::FIXTURE, config(sandbox), runtime()).await;
    let mut client = server.client("k").await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(client.send("echoString", vec![s(&format!("{i}:{}", "x".repeat(4096)))]).await);
    }
    for (i, id) in ids.into_iter().enumerate() {
        let reply = client.reply_to(id).await;
        assert_eq!(reply.args, vec![s(&format!("{i}:{}", "x".repeat(4096)))]);
    }
}

#[tokio::test]
async fn a_client_that_piles_up_events_waits_for_its_own_places_and_others_go_ahead() {
    // The handler sleeps to its deadline; meanwhile the flooder's events
    // pile up, four at most in the handler's queue.
    let sandbox = Sandbox { event_deadline_ms: 500, event_queue_per_client: 4, ..Sandbox::default() };
    let server = TestServer::named("places", guests::FIXTURE, config(sandbox), runtime()).await;
    let mut flooder = server.client("flooder").await;
    let mut other = server.client("other").await;
    let stuck = flooder.send("crash", vec![s("sleep")]).await;
    let mut counts = Vec::new();
    for _ in 0..20 {
        counts.push(flooder.send("count", vec![]).await);
    }
    // Four counts queued and the fifth read and waiting for a place; no more.
    let handed = || server.handler.metrics().events_in.get("count").copied().unwrap_or(0);
    eventually(
        || if handed() >= 5 { Ok(()) } else { Err(format!("{} of the flooder's events handed over", handed())) },
    )
    .await;
    assert_eq!(handed(), 5);
    // The other client's event goes in behind those four, not behind twenty.
    let mine = other.send("count", vec![]).await;
    assert_eq!(flooder.reply_to(stuck).await.name, ERROR);
    assert_eq!(other.reply_to(mine).await.args, vec![n(5.0)], "a fresh instance counted four of the flooder's first");
    for (id, expected) in counts.into_iter().zip((1..=4).chain(6..=21)) {
        assert_eq!(flooder.reply_to(id).await.args, vec![n(f64::from(expected))], "none lost, in order");
    }
}
