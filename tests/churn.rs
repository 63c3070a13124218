//! Thousands of connections open and close (authenticated, rejected, or
//! vanishing without a word); afterwards the registry and the process's open
//! file descriptors are back where they started. Alone in its test binary,
//! so no other test's sockets skew the count.

use ws_host::Config;
use ws_host::codec::{Message, Value};
use ws_host_tests::{Client, TestServer, eventually, guests, runtime, s};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_connections_come_and_go_and_leave_nothing_behind() {
    let server = TestServer::named("churn", guests::CHAT, Config::default(), runtime()).await;
    let mut steady = server.client("steady").await;
    steady.request("join", vec![s("lobby")]).await;
    let fds_before = open_fds();

    let url = server.url();
    let mut rounds = Vec::new();
    for worker in 0..8 {
        let url = url.clone();
        rounds.push(tokio::spawn(async move {
            for i in 0..250 {
                let mut client = Client::connect(&url).await;
                match i % 3 {
                    // Authenticate, join, leave by closing.
                    0 => {
                        assert_eq!(client.auth(&format!("w{worker}-{i}")).await, Message::AuthOk);
                        client.request("join", vec![s("lobby")]).await;
                        client.close().await;
                    }
                    // Rejected.
                    1 => {
                        assert!(matches!(client.auth("").await, Message::AuthRejected { .. }));
                        client.closed().await;
                    }
                    // Connect and vanish without a word.
                    _ => drop(client),
                }
            }
        }));
    }
    for round in rounds {
        round.await.unwrap();
    }
    // Every connection is gone from the registry, and the process holds no
    // more sockets than before. Closing finishes asynchronously: a client's
    // close handshake is answered before the handler hears of the
    // disconnect (as with the npm `ws` server), so poll.
    eventually(|| match (server.handler.registry().len(), open_fds()) {
        (1, fds) if fds <= fds_before => Ok(()),
        (clients, fds) => Err(format!("left behind: {clients} clients, {fds} fds (was {fds_before})")),
    })
    .await;

    // A client leaves the registry after the handler's `on-disconnect`: the
    // handler has heard every join and leave, and still replies.
    assert_eq!(steady.request("join", vec![s("lobby")]).await.args, vec![Value::Array(vec![s("steady")])]);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}
