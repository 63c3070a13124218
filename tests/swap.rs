//! Hot swap under live traffic: nothing lost, duplicated or reordered, no
//! client disconnected, rooms kept, state handed over; broken candidates
//! refused while the running version keeps serving; file watching.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use ws_host::codec::{ERROR, Event, Value};
use ws_host::runtime::CacheUse;
use ws_host::{Config, Sandbox};
use ws_host_tests::{STEP, TestServer, guests, n, s};

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// "v2:17" -> (2, 17)
fn parse_reply(reply: &Event) -> (u32, u64) {
    let [Value::String(text)] = reply.args.as_slice() else { panic!("unexpected reply {reply:?}") };
    let (version, count) = text.strip_prefix('v').and_then(|t| t.split_once(':')).expect("v<version>:<count>");
    (version.parse().unwrap(), count.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_live_traffic_lose_nothing_and_hand_the_state_over() {
    const CLIENTS: usize = 8;
    let server = TestServer::start(guests::COUNTER_V1).await;
    let mut shouter = server.client("shouter").await;
    shouter.send("enter", vec![s("r")]).await;

    // Closed-loop traffic: each client bumps and waits for its reply; every
    // reply is reported as (client, version, count).
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut workers = Vec::new();
    for client_index in 0..CLIENTS {
        let mut client = server.client(&format!("c{client_index}")).await;
        client.send("enter", vec![s("r")]).await;
        let replies = replies_tx.clone();
        let mut stop = stop_tx.subscribe();
        workers.push(tokio::spawn(async move {
            let mut sent = 0u64;
            loop {
                let reply = client.request("bump", vec![n(1.0)]).await;
                sent += 1;
                replies.send((client_index, parse_reply(&reply))).unwrap();
                if stop.try_recv().is_ok() {
                    return (client, sent);
                }
            }
        }));
    }
    drop(replies_tx);

    // Swap v1 -> v2 -> v1 -> ... six times, each once traffic has flowed
    // on the running version, and shout to the room along the way.
    let mut swaps = vec![1u32];
    let mut seen = Vec::new();
    let mut shouts = 0;
    // Waits until `count` replies came from `version`, keeping all replies.
    async fn flow(
        replies: &mut mpsc::UnboundedReceiver<(usize, (u32, u64))>,
        seen: &mut Vec<(usize, (u32, u64))>,
        version: u32,
    ) {
        let mut on_version = 0;
        while on_version < 20 {
            let reply = tokio::time::timeout(STEP, replies.recv()).await.unwrap().unwrap();
            on_version += usize::from(reply.1.0 == version);
            seen.push(reply);
        }
    }
    for round in 0..6 {
        let running = *swaps.last().unwrap();
        flow(&mut replies, &mut seen, running).await;
        shouter.send("shout", vec![s("r"), s(&format!("before swap {round}"))]).await;
        shouts += 1;
        let next = if running == 1 { guests::COUNTER_V2 } else { guests::COUNTER_V1 };
        let version = server.handler.swap(bytes(next)).await.expect("swap");
        assert_eq!(version.number, round + 2);
        swaps.push(if running == 1 { 2 } else { 1 });
    }
    flow(&mut replies, &mut seen, *swaps.last().unwrap()).await;
    let _ = stop_tx.send(());
    while let Some(reply) = replies.recv().await {
        seen.push(reply);
    }
    let mut clients = Vec::new();
    let mut sent_total = 0;
    for worker in workers {
        let (client, sent) = worker.await.unwrap();
        sent_total += sent;
        clients.push(client);
    }

    // Every request got exactly one reply, and the counter state survived
    // every swap: the counts are exactly 1..=total, each once.
    assert_eq!(seen.len() as u64, sent_total);
    let mut by_count: BTreeMap<u64, u32> = BTreeMap::new();
    for (_, (version, count)) in &seen {
        assert!(by_count.insert(*count, *version).is_none(), "count {count} replied twice");
    }
    assert_eq!(by_count.keys().copied().collect::<Vec<_>>(), (1..=sent_total).collect::<Vec<_>>());
    // In counter order, behaviour switches exactly at the swaps: the version
    // labels form one block per swap, in swap order.
    let mut blocks: Vec<u32> = by_count.values().copied().collect();
    blocks.dedup();
    assert_eq!(blocks, swaps, "versions in the order they served");

    // Nobody was disconnected, and the room survived: everyone hears the
    // final version's broadcast, after every earlier shout.
    shouter.send("shout", vec![s("r"), s("after")]).await;
    shouts += 1;
    for client in &mut clients {
        let mut heard = Vec::new();
        while heard.len() < shouts {
            heard.push(client.next_event().await);
        }
        let last = heard.last().unwrap();
        assert_eq!(
            (last.name.as_str(), last.args.clone()),
            ("heard", vec![s("after"), n(f64::from(*swaps.last().unwrap()))])
        );
    }

    // Version 3 changes the type of `bump`: old frames get a clear error,
    // new ones work, and the count carries on.
    let v3 = server.handler.swap(bytes(guests::COUNTER_V3)).await.expect("swap to v3");
    let client = &mut clients[0];
    let refused = client.request("bump", vec![n(1.0)]).await;
    assert_eq!(
        (refused.name.as_str(), refused.args),
        (ERROR, vec![s("bump: argument 1 (by): expected string, got number")])
    );
    let reply = client.request("bump", vec![s("5")]).await;
    assert_eq!(parse_reply(&reply), (3, sent_total + 5));
    assert_eq!(server.handler.version().number, v3.number);

    // Every version counted its bumps and replies into the same figures of
    // `/metrics`; the refused one is not among them.
    let metrics = server.handler.metrics();
    assert_eq!((metrics.events_in["bump"], metrics.events_out["bump"]), (sent_total + 1, sent_total + 1));
}

#[tokio::test]
async fn broken_candidates_are_refused_and_the_running_version_keeps_serving() {
    // A 2 MiB memory cap: version 1 runs, the big build cannot even start.
    let config = Config { sandbox: Sandbox { memory_bytes: 2 << 20, ..Sandbox::default() }, ..Config::default() };
    let server = TestServer::with_config(guests::COUNTER_V1, config).await;
    let mut client = server.client("k").await;
    assert_eq!(parse_reply(&client.request("bump", vec![n(1.0)]).await), (1, 1));

    let candidates: [(&str, Vec<u8>, &str); 5] = [
        ("garbage", b"not wasm at all".to_vec(), "is not a WebAssembly component"),
        ("truncated", bytes(guests::COUNTER_V2)[..5000].to_vec(), "is not a WebAssembly component"),
        ("missing export", bytes(guests::BARE), "is not a valid handler: it exports no `incoming` interface"),
        (
            "event types that cannot cross the wire",
            bytes(guests::BAD_TYPES),
            "`redeem`: parameter `t`: resources cannot cross the wire",
        ),
        ("traps while starting", bytes(guests::COUNTER_BIG), "failed while starting"),
    ];
    for (what, candidate, expected) in candidates {
        let error = server.handler.swap(candidate).await.expect_err(what).to_string();
        assert!(error.contains(expected), "{what}: {error}");
        assert_eq!(server.handler.version().number, 1, "{what}");
    }
    // Still version 1, with its state.
    assert_eq!(parse_reply(&client.request("bump", vec![n(1.0)]).await), (1, 2));
}

#[tokio::test]
async fn a_large_component_swaps_in_and_back() {
    let server = TestServer::start(guests::COUNTER_V1).await;
    let mut client = server.client("k").await;
    client.request("bump", vec![n(2.0)]).await;
    let big = bytes(guests::COUNTER_BIG);
    assert!(big.len() > 1 << 20, "the big build is over 1 MB");
    server.handler.swap(big).await.expect("swap to the big build");
    assert_eq!(parse_reply(&client.request("bump", vec![n(1.0)]).await), (1, 3));
}

#[tokio::test]
async fn the_compile_cache_answers_the_second_load_and_says_so() {
    let dir = std::env::temp_dir().join(format!("ws-host-compile-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = ws_host::Runtime::with_cache(&dir).unwrap();
    let config = Config::default();
    let load = || ws_host::Handler::load_file(&runtime, guests::COUNTER_BIG.as_ref(), &config).unwrap().version();
    let first = load();
    let second = load();
    assert_eq!((first.compile_cache, second.compile_cache), (CacheUse::Miss, CacheUse::Hit));
    let uncached =
        ws_host::Handler::load_file(ws_host_tests::runtime(), guests::COUNTER_BIG.as_ref(), &config).unwrap();
    assert_eq!(uncached.version().compile_cache, CacheUse::Off);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A server of counter v1 loaded from `counter.wasm` in a folder of its own.
async fn serve_counter_file(tag: &str) -> (std::path::PathBuf, std::path::PathBuf, TestServer) {
    let dir = std::env::temp_dir().join(format!("ws-host-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("counter.wasm");
    std::fs::write(&file, bytes(guests::COUNTER_V1)).unwrap();
    let server = TestServer::start(file.to_str().unwrap()).await;
    (dir, file, server)
}

#[tokio::test]
async fn watching_the_file_swaps_on_rewrite_and_on_atomic_replace() {
    let (dir, file, server) = serve_counter_file("watch").await;
    let mut versions = server.handler.versions();
    let _watcher = ws_host::watch::watch_file(server.handler.clone(), &file).unwrap();
    let mut client = server.client("k").await;
    assert_eq!(parse_reply(&client.request("bump", vec![n(1.0)]).await), (1, 1));

    // Rewritten in place, in two writes: the half-written state is refused
    // or skipped, the whole file swaps in.
    let v2 = bytes(guests::COUNTER_V2);
    {
        use std::io::Write;
        let mut out = std::fs::File::create(&file).unwrap();
        out.write_all(&v2[..v2.len() / 2]).unwrap();
        out.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        out.write_all(&v2[v2.len() / 2..]).unwrap();
    }
    tokio::time::timeout(STEP, versions.wait_for(|v| v.number == 2)).await.unwrap().unwrap();
    assert_eq!(parse_reply(&client.request("bump", vec![n(1.0)]).await), (2, 2));

    // Atomically replaced (write beside, rename over).
    let beside = dir.join("counter.wasm.tmp");
    std::fs::write(&beside, bytes(guests::COUNTER_V1)).unwrap();
    std::fs::rename(&beside, &file).unwrap();
    tokio::time::timeout(STEP, versions.wait_for(|v| v.number == 3)).await.unwrap().unwrap();
    assert_eq!(parse_reply(&client.request("bump", vec![n(1.0)]).await), (1, 3));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_file_changed_before_the_watch_began_is_swapped_in() {
    let (dir, file, server) = serve_counter_file("watch-late").await;
    let mut versions = server.handler.versions();
    // Changed after the handler loaded it, before anyone watched it.
    std::fs::write(&file, bytes(guests::COUNTER_V2)).unwrap();
    let _watcher = ws_host::watch::watch_file(server.handler.clone(), &file).unwrap();
    tokio::time::timeout(STEP, versions.wait_for(|v| v.number == 2)).await.unwrap().unwrap();
    let mut client = server.client("k").await;
    assert_eq!(parse_reply(&client.request("bump", vec![n(1.0)]).await).0, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
