//! The three listener modes over real sockets: standalone (one or several
//! handlers, `/healthz`, static files), attached to an existing axum or
//! hyper server, and manual upgrade; graceful shutdown in each.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use ws_host::codec::{Message, Value};
use ws_host::server::App;
use ws_host_tests::{Client, STEP, endpoint, endpoint_with, guests, http_get, refused_with, s};

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = ws_host::server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Asks the fixture what its on-auth saw: "path?query user-agent has-remote".
async fn request_facts(url: &str) -> String {
    let mut client = Client::connect(url).await;
    assert_eq!(client.auth("request").await, Message::AuthOk);
    let reply = client.request("getCtx", vec![]).await;
    match reply.args.as_slice() {
        [Value::String(facts)] => facts.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn standalone_bind_reports_the_port_and_refuses_a_taken_one() {
    let (taken, addr) = listener().await;
    assert_ne!(addr.port(), 0);
    let error = ws_host::server::bind(addr).await.unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with(&format!("cannot listen on {addr}: ")), "{message}");
    assert!(message.ends_with("(pick another port, or stop what uses it)"), "{message}");
    drop(taken);
}

/// Sends `signal` to this test process, as a user or a supervisor would.
fn send_to_self(signal: &str) {
    let status = std::process::Command::new("kill").args(["-s", signal, &std::process::id().to_string()]).status();
    assert!(status.expect("cannot run kill").success(), "kill -s {signal} failed");
}

#[tokio::test]
async fn a_signal_sent_right_after_listening_stops_the_server_cleanly() {
    // Without a handler taken over up front, either signal would end this
    // process here.
    let interrupted = ws_host::server::shutdown_signal().unwrap();
    send_to_self("INT");
    tokio::time::timeout(STEP, interrupted).await.expect("SIGINT was not seen");

    let echo = endpoint(guests::ECHO);
    let (listener, addr) = listener().await;
    let shutdown = ws_host::server::shutdown_signal().unwrap();
    let server = tokio::spawn(App::new().default_endpoint(echo.clone()).serve(listener, shutdown));
    let mut client = Client::connect(&format!("ws://{addr}/")).await;
    assert_eq!(client.auth("").await, Message::AuthOk);
    send_to_self("TERM");
    assert_eq!(client.closed().await.0.0, 1001);
    tokio::time::timeout(STEP, server).await.expect("SIGTERM did not stop the server").unwrap().unwrap();
    assert!(echo.handler().registry().is_empty());
}

#[tokio::test]
async fn standalone_routes_several_handlers_by_path_with_health_and_static_files() {
    let dir = std::env::temp_dir().join(format!("ws-host-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>demo</h1>").unwrap();

    let chat = endpoint(guests::CHAT);
    let echo = endpoint(guests::ECHO);
    let app = App::new().route("/chat", chat.clone()).route("/echo", echo.clone()).static_dir(&dir);
    let (listener, addr) = listener().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));

    let mut ann = Client::connect(&format!("ws://{addr}/chat")).await;
    assert_eq!(ann.auth("ann").await, Message::AuthOk);
    assert_eq!(ann.request("join", vec![s("r")]).await.args, vec![Value::Array(vec![s("ann")])]);
    let mut echoer = Client::connect(&format!("ws://{addr}/echo")).await;
    assert_eq!(echoer.auth("").await, Message::AuthOk, "echo accepts the empty key chat refuses");
    assert_eq!(echoer.request("echo", vec![s("e")]).await.args, vec![s("e")]);
    // Each handler has its own clients.
    assert_eq!((chat.handler().registry().len(), echo.handler().registry().len()), (1, 1));

    assert_eq!(http_get(addr, "/healthz").await, (200, "OK".into()));
    assert_eq!(http_get(addr, "/index.html").await, (200, "<h1>demo</h1>".into()));
    assert_eq!(http_get(addr, "/missing.html").await.0, 404);
    assert_eq!(refused_with(&format!("ws://{addr}/nowhere")).await, 404);
    assert_eq!(http_get(addr, "/chat").await, (426, "this is a WebSocket endpoint".into()));

    // Graceful shutdown: every client gets 1001, each handler sees it go.
    stop.send(()).unwrap();
    assert_eq!(ann.closed().await.0.0, 1001);
    assert_eq!(echoer.closed().await.0.0, 1001);
    tokio::time::timeout(STEP, server).await.unwrap().unwrap().unwrap();
    assert!(chat.handler().registry().is_empty() && echo.handler().registry().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_http_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An idle connection waiting for its next request is also dropped after
    // the auth timeout: made longer than a test step, so that only the
    // shutdown can close it here.
    let config = ws_host::Config { auth_timeout_ms: 600_000, ..Default::default() };
    let app = App::new().default_endpoint(endpoint_with(guests::ECHO, config));
    let (listener, addr) = listener().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    let mut browser = tokio::net::TcpStream::connect(addr).await.unwrap();
    browser.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = [0; 1024];
    let n = tokio::time::timeout(STEP, browser.read(&mut response)).await.unwrap().unwrap();
    assert!(response[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{}", String::from_utf8_lossy(&response[..n]));

    // The connection is kept open for a next request until the server stops.
    stop.send(()).unwrap();
    let n = tokio::time::timeout(STEP, browser.read(&mut response)).await.expect("closed in time").unwrap();
    assert_eq!(n, 0, "closed without another response");
    tokio::time::timeout(STEP, server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn a_frame_sent_along_with_the_upgrade_request_reaches_the_handler() {
    // The standalone server and hyper's own hand the TCP stream back out of
    // the upgrade, with what hyper read past the request; axum's server
    // wraps the stream, and hyper's box is served with those bytes inside.
    let echo = endpoint(guests::ECHO);
    let (standalone, standalone_addr) = listener().await;
    tokio::spawn(App::new().default_endpoint(echo.clone()).serve(standalone, std::future::pending()));
    let (hyper, hyper_addr) = listener().await;
    tokio::spawn(example_hyper_service::serve(hyper, echo.clone()));
    let (axum, axum_addr) = listener().await;
    tokio::spawn(example_axum_app::serve(axum, echo.clone(), std::future::pending()));

    let auth = Message::Auth { key: "k".into(), version: Value::Number(1.0) };
    for (addr, path) in [(standalone_addr, "/"), (hyper_addr, "/ws"), (axum_addr, "/ws")] {
        let mut client = Client::connect_sending(addr, path, &auth).await;
        assert_eq!(client.recv().await, Message::AuthOk, "{addr}{path}");
        assert_eq!(client.request("echo", vec![s(path)]).await.args, vec![s(path)]);
    }
    echo.shutdown().await;
    assert!(echo.handler().registry().is_empty());
}

#[tokio::test]
async fn attached_to_an_axum_app_http_and_websocket_share_one_port() {
    let chat = endpoint(guests::CHAT);
    let (listener, addr) = listener().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(example_axum_app::serve(listener, chat.clone(), async {
        let _ = stopped.await;
    }));

    assert_eq!(http_get(addr, "/health").await, (200, "OK".into()));
    let mut bob = Client::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(bob.auth("bob").await, Message::AuthOk);
    assert_eq!(bob.request("join", vec![s("r")]).await.args, vec![Value::Array(vec![s("bob")])]);

    stop.send(()).unwrap();
    assert_eq!(bob.closed().await.0.0, 1001);
    tokio::time::timeout(STEP, server).await.unwrap().unwrap().unwrap();
    assert!(chat.handler().registry().is_empty());
}

#[tokio::test]
async fn attached_to_a_plain_hyper_service_with_request_facts() {
    let fixture = endpoint(guests::FIXTURE);
    let (listener, addr) = listener().await;
    let server = tokio::spawn(example_hyper_service::serve(listener, fixture.clone()));

    assert_eq!(http_get(addr, "/").await, (200, "hello from hyper".into()));
    let facts = request_facts(&format!("ws://{addr}/ws?x=1")).await;
    assert!(facts.starts_with("/ws?x=1 "), "{facts}");
    assert!(facts.ends_with(" true"), "the remote address reached on-auth: {facts}");

    fixture.shutdown().await;
    assert!(fixture.handler().registry().is_empty());
    server.abort();
}

#[tokio::test]
async fn manual_upgrade_lets_the_application_refuse_before_any_handler_runs() {
    let chat = endpoint(guests::CHAT);
    let fixture = endpoint(guests::FIXTURE);
    let (listener, addr) = listener().await;
    let app = example_manual_upgrade::router(chat.clone(), fixture.clone());
    let server =
        tokio::spawn(
            async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await },
        );

    assert_eq!(refused_with(&format!("ws://{addr}/chat")).await, 401);
    assert_eq!(refused_with(&format!("ws://{addr}/chat?token=wrong")).await, 401);
    assert_eq!(refused_with(&format!("ws://{addr}/other?{}", example_manual_upgrade::TOKEN)).await, 404);
    assert!(chat.handler().registry().is_empty(), "a refused request never reaches the handler");

    let mut cat = Client::connect(&format!("ws://{addr}/chat?{}", example_manual_upgrade::TOKEN)).await;
    assert_eq!(cat.auth("cat").await, Message::AuthOk);
    assert_eq!(cat.request("join", vec![s("r")]).await.args, vec![Value::Array(vec![s("cat")])]);
    let facts = request_facts(&format!("ws://{addr}/echo?{}", example_manual_upgrade::TOKEN)).await;
    assert!(
        facts.starts_with(&format!("/echo?{} ", example_manual_upgrade::TOKEN)) && facts.ends_with(" true"),
        "{facts}"
    );

    let (closing, _) = tokio::join!(cat.closed(), chat.shutdown());
    assert_eq!(closing.0.0, 1001);
    fixture.shutdown().await;
    server.abort();
}

#[tokio::test]
async fn a_stream_upgraded_by_another_server_can_be_handed_over() {
    let echo = endpoint(guests::ECHO);
    let (listener, addr) = listener().await;
    let handing_over = echo.clone();
    tokio::spawn(async move {
        // A minimal "other server": reads the request, answers 101 itself,
        // then hands the raw stream to ws-host.
        let (stream, remote) = listener.accept().await.unwrap();
        let mut stream = BufReader::new(stream);
        let mut key = String::new();
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("sec-websocket-key:") {
                key = line[line.len() - value.len()..].trim().to_owned();
            }
            if line == "\r\n" {
                break;
            }
        }
        let accept = derive_accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        stream.get_mut().write_all(response.as_bytes()).await.unwrap();
        let info = ws_host::RequestInfo { path: "/raw".into(), remote_addr: Some(remote), ..Default::default() };
        handing_over.serve_upgraded(stream.into_inner(), info);
    });

    let mut client = Client::connect(&format!("ws://{addr}/raw")).await;
    assert_eq!(client.auth("k").await, Message::AuthOk);
    assert_eq!(client.request("echo", vec![s("handed over")]).await.args, vec![s("handed over")]);
    let (closing, _) = tokio::join!(client.closed(), echo.shutdown());
    assert_eq!(closing.0.0, 1001);
    assert!(echo.handler().registry().is_empty());
}

#[tokio::test]
async fn metrics_count_exactly_what_happened() {
    let chat = endpoint(guests::CHAT);
    let (listener, addr) = listener().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(App::new().route("/chat", chat.clone()).serve(listener, async {
        let _ = stopped.await;
    }));
    let url = format!("ws://{addr}/chat");
    // Connected, never authenticated.
    let lurker = Client::connect(&url).await;
    let mut ann = Client::connect(&url).await;
    assert_eq!(ann.auth("ann").await, Message::AuthOk);
    let mut bob = Client::connect(&url).await;
    assert_eq!(bob.auth("bob").await, Message::AuthOk);

    ann.request("join", vec![s("lobby")]).await;
    bob.request("join", vec![s("lobby")]).await;
    assert_eq!(ann.next_event().await.name, "joined");
    ann.send("say", vec![s("lobby"), s("hi")]).await;
    assert_eq!(ann.next_event().await.name, "said");
    assert_eq!(bob.next_event().await.name, "said");
    let wrong = bob.request("say", vec![s("lobby"), ws_host_tests::n(1.0)]).await;
    assert_eq!(wrong.name, ws_host::codec::ERROR);
    bob.send_frame(tokio_tungstenite::tungstenite::Message::Binary(bytes::Bytes::from_static(b"garbage"))).await;
    assert_eq!(bob.closed().await.0.0, 1002);
    assert_eq!(ann.next_event().await.name, "left");

    // Every disconnect has been seen once a later request is answered.
    ann.request("history", vec![s("lobby"), ws_host_tests::n(0.0)]).await;

    let (status, text) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let labels = "route=\"/chat\",handler=\"chat\"";
    for expected in [
        format!("ws_host_events_in_total{{{labels},event=\"join\"}} 2"),
        format!("ws_host_events_in_total{{{labels},event=\"say\"}} 1"),
        format!("ws_host_events_out_total{{{labels},event=\"join\"}} 2"),
        format!("ws_host_events_out_total{{{labels},event=\"joined\"}} 1"),
        format!("ws_host_events_out_total{{{labels},event=\"said\"}} 2"),
        format!("ws_host_events_out_total{{{labels},event=\"ezez-ws::error\"}} 1"),
        format!("ws_host_events_out_total{{{labels},event=\"left\"}} 1"),
        format!("ws_host_refused_total{{{labels},reason=\"does_not_fit\"}} 1"),
        format!("ws_host_refused_total{{{labels},reason=\"malformed\"}} 1"),
        format!("ws_host_disconnects_total{{{labels},code=\"1002\"}} 1"),
        format!("ws_host_clients{{{labels}}} 2"),
        format!("ws_host_authenticated_clients{{{labels}}} 1"),
        format!("ws_host_events_in_total{{{labels},event=\"history\"}} 1"),
        format!("ws_host_events_out_total{{{labels},event=\"history\"}} 1"),
        format!("ws_host_traps_total{{{labels}}} 0"),
        format!("ws_host_swaps_total{{{labels}}} 0"),
        format!("ws_host_handler_version{{{labels},digest="),
        format!("ws_host_handler_seconds_count{{{labels}}} 4"),
        format!("ws_host_handler_seconds_bucket{{{labels},le=\"+Inf\"}} 4"),
    ] {
        assert!(text.lines().any(|line| line.starts_with(&expected)), "missing {expected} in\n{text}");
    }
    let memory = text.lines().find(|l| l.starts_with("ws_host_instance_memory_bytes")).expect("memory gauge");
    assert!(memory.rsplit(' ').next().unwrap().parse::<u64>().unwrap() > 0, "{memory}");
    assert_eq!(text.lines().filter(|l| l.starts_with("ws_host_events_out_total")).count(), 6, "{text}");

    drop(lurker);
    stop.send(()).unwrap();
    assert_eq!(ann.closed().await.0.0, 1001);
    tokio::time::timeout(STEP, server).await.unwrap().unwrap().unwrap();
}
