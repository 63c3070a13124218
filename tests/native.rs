//! Native Rust handlers behind the same server: the benchmark's baseline
//! answers exactly as the components it is compared with, a panic answers
//! like a trap, a native handler refuses a swap with a clear error, made-up
//! event names do not grow the counters without bound, and the handler's
//! thread (native or WebAssembly alike) is a batch thread.

use ws_host::codec::{ERROR, Event, Value};
use ws_host::registry::{ClientId, Registry};
use ws_host::{Config, Handler, LoadError, NativeHandler};
use ws_host_tests::native::EchoFanout;
use ws_host_tests::{TestServer, guests, n, s};

/// The echo and fan-out exchanges the benchmark makes, as each server answers them.
async fn bench_exchanges(echo: &TestServer, fanout: &TestServer) -> Vec<(String, Vec<Value>)> {
    let mut seen = Vec::new();
    let mut client = echo.client("bench").await;
    for (name, args) in [("echo", vec![s("hello")]), ("echoBytes", vec![Value::Bytes(vec![1, 2, 3].into())])] {
        let reply: Event = client.request(name, args).await;
        seen.push((reply.name, reply.args));
    }
    let mut member = fanout.client("member").await;
    let mut publisher = fanout.client("publisher").await;
    let joined = member.request("join", vec![s("bench")]).await;
    seen.push((joined.name, joined.args));
    publisher.send("publish", vec![s("bench"), n(7.0), s("payload")]).await;
    let published = member.next_event().await;
    seen.push((published.name, published.args));
    seen
}

#[tokio::test]
async fn the_native_baseline_answers_as_the_components_do() {
    let native =
        TestServer::serving(Handler::native("native", EchoFanout, &Config::default()).unwrap(), Config::default())
            .await;
    let from_native = bench_exchanges(&native, &native).await;
    let echo = TestServer::start(guests::ECHO).await;
    let fanout = TestServer::start(guests::FANOUT).await;
    let from_wasm = bench_exchanges(&echo, &fanout).await;
    assert_eq!(from_native, from_wasm);
    assert_eq!(from_native[3], ("published".to_string(), vec![n(7.0), s("payload")]));
}

struct Fragile;

impl NativeHandler for Fragile {
    fn on_auth(&mut self, _: &Registry, _: ClientId, key: &str, _: &ws_host::RequestInfo) -> Result<(), String> {
        if key == "mallory" { Err("Go away".into()) } else { Ok(()) }
    }

    fn on_event(&mut self, _: &Registry, _: ClientId, event: &Event) -> Result<Option<Vec<Value>>, String> {
        match event.name.as_str() {
            "panic" => panic!("the native handler gave up"),
            "ok" => Ok(Some(vec![s("fine")])),
            other => Err(format!("{other}: unknown event")),
        }
    }
}

#[tokio::test]
async fn a_native_panic_answers_like_a_trap_and_swaps_are_refused() {
    let handler = Handler::native("fragile", Fragile, &Config::default()).unwrap();
    let server = TestServer::serving(handler.clone(), Config::default()).await;
    let mut client = server.client("ann").await;
    let reply = client.request("panic", vec![]).await;
    assert_eq!((reply.name.as_str(), reply.args), (ERROR, vec![s("panic: the handler failed on this event")]));
    assert_eq!(client.request("ok", vec![]).await.args, vec![s("fine")], "still serving after the panic");
    assert_eq!(client.request("nope", vec![]).await.args, vec![s("nope: unknown event")]);
    assert_eq!(handler.metrics().traps, 1);

    let mut mallory = ws_host_tests::Client::connect(&server.url()).await;
    assert_eq!(mallory.auth("mallory").await, ws_host::codec::Message::AuthRejected { reason: "Go away".into() });

    let refused = handler.swap(std::fs::read(guests::ECHO).unwrap()).await.unwrap_err();
    assert!(matches!(refused, LoadError::Native { .. }), "{refused}");
    assert!(refused.to_string().contains("cannot be swapped"), "{refused}");
    server.stop().await;
}

/// A native handler hears every name a client makes up; the counters by
/// name keep the first ones and count the rest together, so such a client
/// cannot grow the server's memory or its `/metrics` page without bound.
#[tokio::test]
async fn made_up_event_names_cannot_grow_the_counters_without_bound() {
    use ws_host::runtime::metrics::{MAX_EVENT_NAMES, OTHER_EVENTS};
    let handler = Handler::native("fragile", Fragile, &Config::default()).unwrap();
    let server = TestServer::serving(handler.clone(), Config::default()).await;
    let mut client = server.client("eve").await;
    for n in 0..MAX_EVENT_NAMES + 20 {
        let reply = client.request(&format!("made-up-{n}"), vec![]).await;
        assert_eq!(reply.name, ERROR, "each is refused by the handler, and the connection stays");
    }
    let counted = handler.metrics().events_in;
    assert_eq!(counted.len(), MAX_EVENT_NAMES + 1, "the first names, and one for the rest");
    assert_eq!((counted["made-up-0"], counted[OTHER_EVENTS]), (1, 20));
    assert_eq!(client.request("ok", vec![]).await.args, vec![s("fine")]);
    server.stop().await;
}

/// The handler's thread asks to be scheduled as a batch thread, so the I/O
/// thread that wakes it is not preempted (`host/src/runtime/scheduling.rs`).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_handler_thread_runs_in_the_batch_scheduling_class() {
    const SCHED_BATCH: u64 = 3;
    let handler = Handler::native("sched-probe", EchoFanout, &Config::default()).unwrap();
    // Answered by the handler's thread, so it has set its class by now.
    handler.disconnected(ClientId::MAX, 1000, String::new()).await;
    // Thread names are cut to 15 bytes in /proc.
    let policies: Vec<u64> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            (name.trim() == "handler-sched-p").then(|| ws_host_tests::proc_stat_fields(path.join("stat"), [41])[0])
        })
        .collect();
    assert_eq!(policies, vec![SCHED_BATCH], "the scheduling policy of the one handler-sched-probe thread");
}
