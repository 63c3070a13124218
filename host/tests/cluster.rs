//! Several `ws-host` processes sharing one real `redis-server` (`--cluster`):
//! every target reaches clients on every node exactly once, lookups and
//! kicks work across nodes, a killed node is forgotten, and delivery resumes
//! after Redis restarts while each node kept serving its own clients.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ws_host::codec::{Event, Value};
use ws_host_tests::redis::RedisServer;
use ws_host_tests::{Client, guests, http_get, n, s};

/// How long a cluster may take to converge (a node is forgotten after 3 s
/// of silence; reconnecting backs off up to 5 s).
const CONVERGE: Duration = Duration::from_secs(20);

/// One `ws-host run <handler> --cluster ...` process.
struct Node {
    child: Child,
    url: String,
    addr: SocketAddr,
    /// Its log lines, as they come (also echoed to the test's stderr).
    log: std::sync::mpsc::Receiver<String>,
}

impl Node {
    fn start(redis: &RedisServer) -> Node {
        Node::serving(guests::FIXTURE, redis)
    }

    fn serving(handler: &str, redis: &RedisServer) -> Node {
        Node::run(&[handler, "--cluster", &redis.url()])
    }

    /// The same, with the cluster named in a config file instead of a flag.
    fn configured(redis: &RedisServer) -> Node {
        let file = std::env::temp_dir().join(format!("ws-host-cluster-{}.toml", std::process::id()));
        let settings = format!("handler = {:?}\ncluster = {:?}\n", guests::FIXTURE, redis.url());
        std::fs::write(&file, settings).unwrap();
        let node = Node::run(&["--config", file.to_str().unwrap()]);
        std::fs::remove_file(file).unwrap();
        node
    }

    fn run(args: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ws-host"))
            .arg("run")
            .args(args)
            .args(["--port", "0", "--no-cache"])
            .env("RUST_LOG", "warn,ws_host::cluster=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ws-host");
        let (lines, log) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("{line}");
                let _ = lines.send(line);
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read stdout");
        let url = line.trim().strip_prefix("ws-host listening on ").unwrap_or_else(|| panic!("first line {line:?}"));
        let addr = url.strip_prefix("ws://").unwrap().parse().unwrap();
        Node { child, url: url.to_owned(), addr, log }
    }

    /// Waits for a log line that contains `text`.
    fn logs(&self, text: &str) {
        let started = Instant::now();
        while let Some(left) = CONVERGE.checked_sub(started.elapsed()) {
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no log line with {text:?}");
    }

    /// Asks the process to stop (SIGTERM), as a deployment would.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    async fn client(&self, key: &str) -> Client {
        let mut client = Client::connect(&self.url).await;
        client.auth(key).await;
        client
    }

    /// One of this node's `ws_host_cluster_*` figures.
    async fn metric(&self, name: &str) -> u64 {
        let (_, text) = http_get(self.addr, "/metrics").await;
        let prefix = format!("ws_host_cluster_{name}{{");
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{text}"))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Repeats a request until `want` accepts its reply: the cluster converges,
/// it does not jump.
async fn until_reply(client: &mut Client, event: &str, args: Vec<Value>, want: impl Fn(&Event) -> bool) {
    let started = Instant::now();
    loop {
        let reply = client.request(event, args.clone()).await;
        if want(&reply) {
            return;
        }
        assert!(started.elapsed() < CONVERGE, "{event}: still {:?} after {CONVERGE:?}", reply.args);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until a node's `ws_host_cluster_<name>` satisfies `want`.
async fn until_metric(node: &Node, name: &str, want: impl Fn(u64) -> bool) {
    let started = Instant::now();
    loop {
        let value = node.metric(name).await;
        if want(value) {
            return;
        }
        assert!(started.elapsed() < CONVERGE, "ws_host_cluster_{name} still {value} after {CONVERGE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn id(event: &Event) -> u64 {
    match event.args.as_slice() {
        [Value::BigInt(id)] => *id as u64,
        other => panic!("expected a client id, got {other:?}"),
    }
}

fn ids(event: &Event) -> Vec<u64> {
    match event.args.as_slice() {
        [Value::Array(ids)] => ids
            .iter()
            .map(|v| match v {
                Value::BigInt(id) => *id as u64,
                other => panic!("expected a client id, got {other:?}"),
            })
            .collect(),
        other => panic!("expected client ids, got {other:?}"),
    }
}

/// The `ping(n)` values of the next `count` events.
async fn pings(client: &mut Client, count: usize) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    for _ in 0..count {
        let event = client.next_event().await;
        assert_eq!(event.name, "ping");
        let [Value::Number(value)] = event.args.as_slice() else { panic!("{event:?}") };
        assert!(seen.insert(*value as u32), "ping({value}) arrived twice");
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_every_target_rooms_lookups_and_kicks() {
    let redis = RedisServer::start();
    let nodes = [Node::start(&redis), Node::start(&redis), Node::configured(&redis)];
    let mut a = nodes[0].client("a").await;
    let mut a2 = nodes[0].client("a2").await;
    let mut b = nodes[1].client("b").await;
    let mut c = nodes[2].client("c").await;

    // Ids are unique across the cluster and carry their node.
    let mut all = Vec::new();
    for client in [&mut a, &mut a2, &mut b, &mut c] {
        all.push(id(&client.request("whoami", vec![]).await));
    }
    let [id_a, id_a2, id_b, id_c] = all[..] else { unreachable!() };
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 4, "{all:?}");
    assert_eq!(id_a >> 40, id_a2 >> 40, "same node, same high bits");
    assert_eq!([id_a >> 40, id_b >> 40, id_c >> 40].iter().collect::<BTreeSet<_>>().len(), 3);
    all.sort_unstable();
    // Every node lists every client of the cluster.
    for client in [&mut a, &mut b, &mut c] {
        until_reply(client, "allClients", vec![], |reply| ids(reply) == all).await;
    }

    // Rooms span nodes: membership is visible everywhere.
    for client in [&mut a, &mut b, &mut c] {
        client.request("join", vec![s("r")]).await;
    }
    let mut members = vec![id_a, id_b, id_c];
    members.sort_unstable();
    until_reply(&mut c, "join", vec![s("r")], |reply| ids(reply) == members).await;

    // Every target, each recipient once, wherever it is connected.
    a.send("send", vec![s("all"), n(1.0)]).await;
    b.send("send", vec![s("all-but-me"), n(2.0)]).await;
    c.send("send", vec![s("room:r"), n(3.0)]).await;
    a.send("send", vec![s("room-but-me:r"), n(4.0)]).await;
    // One more broadcast from each node: anything sent twice or to the wrong
    // client would show up among these.
    for (from, value) in [(&mut a, 10.0), (&mut b, 11.0), (&mut c, 12.0)] {
        from.send("send", vec![s("all"), n(value)]).await;
    }
    let expected: [(&mut Client, &[u32]); 4] = [
        (&mut a, &[1, 2, 3, 10, 11, 12]),
        (&mut a2, &[1, 2, 10, 11, 12]),
        (&mut b, &[1, 3, 4, 10, 11, 12]),
        (&mut c, &[1, 2, 3, 4, 10, 11, 12]),
    ];
    for (client, values) in expected {
        assert_eq!(pings(client, values.len()).await, values.iter().copied().collect());
        assert!(!client.has_backlog());
    }

    // A kick from node A closes a connection held by node C.
    a.send("kick", vec![Value::BigInt(id_c.into()), n(4001.0), s("kicked from A")]).await;
    assert_eq!(c.closed().await.0, (4001, "kicked from A".to_owned()));
    let without_c: Vec<u64> = all.iter().copied().filter(|id| *id != id_c).collect();
    until_reply(&mut b, "allClients", vec![], |reply| ids(reply) == without_c).await;
    assert_eq!(nodes[0].metric("nodes").await, 2);
    assert_eq!(nodes[0].metric("dropped_total").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_forgotten_and_delivery_resumes_after_redis_restarts() {
    let mut redis = RedisServer::start();
    let mut nodes = [Node::start(&redis), Node::start(&redis), Node::start(&redis)];
    let mut a = nodes[0].client("a").await;
    let mut b = nodes[1].client("b").await;
    let mut c = nodes[2].client("c").await;
    let id_a = id(&a.request("whoami", vec![]).await);
    let id_c = id(&c.request("whoami", vec![]).await);
    for client in [&mut a, &mut b, &mut c] {
        client.request("join", vec![s("r")]).await;
    }

    // Node B dies without a word: the others keep working and forget it.
    nodes[1].kill();
    a.send("send", vec![s("room:r"), n(1.0)]).await;
    assert_eq!(pings(&mut a, 1).await, [1].into());
    assert_eq!(pings(&mut c, 1).await, [1].into());
    let mut survivors = vec![id_a, id_c];
    survivors.sort_unstable();
    until_reply(&mut a, "join", vec![s("r")], |reply| ids(reply) == survivors).await;

    // Redis goes away: each node serves its own clients; what could not
    // reach the other node is counted as dropped, not delivered late.
    redis.stop();
    a.send("send", vec![s("room:r"), n(2.0)]).await;
    assert_eq!(pings(&mut a, 1).await, [2].into());
    until_metric(&nodes[0], "dropped_total", |dropped| dropped > 0).await;
    until_metric(&nodes[0], "connected", |connected| connected == 0).await;

    // Redis is back (empty): both nodes reconnect and hear each other again.
    redis.restart();
    for node in [&nodes[0], &nodes[2]] {
        // Subscribed again, and published again (a heartbeat within a second).
        let published = node.metric("published_total").await;
        until_metric(node, "connected", |connected| connected == 1).await;
        until_metric(node, "published_total", |now| now > published).await;
    }
    c.send("send", vec![s("room:r"), n(3.0)]).await;
    assert_eq!(pings(&mut a, 1).await, [3].into());
    // Ping 2 never reached C: its next event is the one sent after recovery.
    assert_eq!(pings(&mut c, 1).await, [3].into());
    a.send("send", vec![s("room:r"), n(4.0)]).await;
    assert_eq!(pings(&mut a, 1).await, [4].into());
    assert_eq!(pings(&mut c, 1).await, [4].into());
    until_reply(&mut c, "join", vec![s("r")], |reply| ids(reply) == survivors).await;

    // Redis restarted empty, so its node counter starts again: a node that
    // joins now still gets a number no live node holds.
    let late = Node::start(&redis);
    let taken = [nodes[0].metric("node").await, nodes[2].metric("node").await];
    let number = late.metric("node").await;
    assert!(!taken.contains(&number), "{number} is taken: {taken:?}");
}

#[tokio::test]
async fn the_chat_reads_nicknames_of_clients_on_other_nodes() {
    let redis = RedisServer::start();
    let nodes = [Node::serving(guests::CHAT, &redis), Node::serving(guests::CHAT, &redis)];
    let mut ann = nodes[0].client("ann").await;
    let mut bob = nodes[1].client("bob").await;
    ann.request("join", vec![s("lobby")]).await;
    // Bob's node answers with both nicknames once it has heard of Ann:
    // her context (the nickname) is read on the other node.
    let both = Value::Array(vec![s("ann"), s("bob")]);
    until_reply(&mut bob, "join", vec![s("lobby")], |reply| reply.args == [both.clone()]).await;
    // Ann heard Bob join through her own node, exactly once.
    let joined = ann.next_event().await;
    assert_eq!((joined.name.as_str(), joined.args), ("joined", vec![s("lobby"), s("bob")]));
    bob.send("say", vec![s("lobby"), s("hi from B")]).await;
    assert_eq!(ann.next_event().await.name, "said");
    assert!(!ann.has_backlog());
    // A broadcast reaches the room's members when it arrives at their node:
    // when Ann's `joined` was still on its way while Bob joined, Bob gets it.
    let mut first = bob.next_event().await;
    if first.name == "joined" {
        assert_eq!(first.args, vec![s("lobby"), s("ann")]);
        first = bob.next_event().await;
    }
    assert_eq!(first.name, "said");
    assert!(!bob.has_backlog());

    // A node stopped with SIGTERM says goodbye: the other forgets its
    // clients at once, not after the silence that marks a crashed node.
    nodes[1].terminate();
    nodes[0].logs("a node left the cluster");
    assert_eq!(ann.request("join", vec![s("lobby")]).await.args, [Value::Array(vec![s("ann")])]);
}
