//! The `ws-host` binary: serves a handler, says where it listens, and fails
//! with a one-line reason on a taken port, a missing file or a file that is
//! not a handler.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use ws_host::codec::Message;
use ws_host_tests::{Client, guests, http_get, refused_with, s};

fn ws_host() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ws-host"));
    command.env("RUST_LOG", "warn");
    command
}

/// Starts `ws-host run <args> --port 0`; returns the child and its URL.
fn start(args: &[&str]) -> (Child, String) {
    let mut child =
        ws_host().arg("run").args(args).args(["--port", "0"]).stdout(Stdio::piped()).spawn().expect("spawn ws-host");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read stdout");
    let url =
        line.trim().strip_prefix("ws-host listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, url.to_owned())
}

/// Starts `command` (a `ws-host run ... --port 0`) with its output piped;
/// returns the child, its URL, and its stderr line by line as it comes.
fn start_piped(command: &mut Command) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn ws-host");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read stdout");
    let url = line.trim().strip_prefix("ws-host listening on ").expect("the listening line").to_owned();
    let (log, logged) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || stderr.lines().map_while(Result::ok).try_for_each(|line| log.send(line)));
    (child, url, logged)
}

/// Runs to completion, which must succeed; returns stdout.
fn succeeds(args: &[&str]) -> String {
    let output = ws_host().args(args).output().expect("run ws-host");
    assert!(output.status.success(), "should succeed: {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Runs to completion, which must fail; returns stderr.
fn fails(args: &[&str]) -> String {
    let output = ws_host().args(args).output().expect("run ws-host");
    assert!(!output.status.success(), "should fail: {args:?}");
    String::from_utf8(output.stderr).unwrap()
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn run_serves_the_chat_example_and_stops_cleanly_on_sigterm() {
    let (mut child, url) = start(&[guests::CHAT]);
    let mut ann = Client::connect(&url).await;
    assert_eq!(ann.auth("ann").await, Message::AuthOk);
    let reply = ann.request("join", vec![s("lobby")]).await;
    assert_eq!(reply.args, vec![ws_host::codec::Value::Array(vec![s("ann")])]);
    // Every path is the handler's: a plain request is told to upgrade.
    let addr: std::net::SocketAddr = url.trim_start_matches("ws://").parse().unwrap();
    assert_eq!(http_get(addr, "/any/path").await, (426, "this is a WebSocket endpoint".into()));
    assert_eq!(http_get(addr, "/healthz").await, (200, "OK".into()));
    sigterm(&child);
    assert_eq!(ann.closed().await.0.0, 1001);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn routes_static_files_and_health_on_one_port() {
    let dir = std::env::temp_dir().join(format!("ws-host-cli-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "hello page").unwrap();
    let chat = format!("/chat={}", guests::CHAT);
    let echo = format!("/echo={}", guests::ECHO);
    let (mut child, url) = start(&["--route", &chat, "--route", &echo, "--static", dir.to_str().unwrap()]);
    let addr: std::net::SocketAddr = url.trim_start_matches("ws://").parse().unwrap();

    let mut echoer = Client::connect(&format!("{url}/echo")).await;
    assert_eq!(echoer.auth("").await, Message::AuthOk);
    assert_eq!(echoer.request("echo", vec![s("x")]).await.args, vec![s("x")]);
    let mut nobody = Client::connect(&format!("{url}/chat")).await;
    assert_eq!(nobody.auth("").await, Message::AuthRejected { reason: "Invalid auth key".into() });
    assert_eq!(nobody.closed().await.0.0, 1008);
    assert_eq!(refused_with(&format!("{url}/elsewhere")).await, 404);
    assert_eq!(http_get(addr, "/healthz").await, (200, "OK".into()));
    assert_eq!(http_get(addr, "/").await, (200, "hello page".into()));

    sigterm(&child);
    assert_eq!(echoer.closed().await.0.0, 1001);
    assert!(child.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Bumps until a reply comes from `version` (a swap is asynchronous to the
/// client); returns the count then. Every bump is a full round trip.
async fn bump_until(client: &mut Client, version: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reply = client.request("bump", vec![ws_host::codec::Value::Number(1.0)]).await;
        let [ws_host::codec::Value::String(text)] = reply.args.as_slice() else { panic!("{reply:?}") };
        if let Some(count) = text.strip_prefix(&format!("{version}:")) {
            return count.parse().unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "still {text}, never {version}");
    }
}

/// A temporary folder with a copy of counter v1 as `counter.wasm`.
fn counter_file(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("ws-host-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("counter.wasm");
    std::fs::copy(guests::COUNTER_V1, &file).unwrap();
    (dir, file)
}

#[tokio::test]
async fn sighup_reloads_the_handler_with_clients_connected() {
    let (dir, file) = counter_file("sighup");
    let (mut child, url) = start(&[file.to_str().unwrap()]);
    let addr: std::net::SocketAddr = url.trim_start_matches("ws://").parse().unwrap();
    let mut client = Client::connect(&url).await;
    assert_eq!(client.auth("k").await, Message::AuthOk);
    assert_eq!(bump_until(&mut client, "v1").await, 1);

    std::fs::copy(guests::COUNTER_V2, &file).unwrap();
    let hup = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let count = bump_until(&mut client, "v2").await;
    assert!(count >= 2, "the state was handed over: {count}");
    let (status, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("ws_host_handler_version{route=\"*\",handler=\"counter\""), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("ws_host_handler_version") && l.ends_with("} 2")), "{metrics}");
    assert!(metrics.contains("ws_host_clients{route=\"*\",handler=\"counter\"} 1"), "{metrics}");

    sigterm(&child);
    assert_eq!(client.closed().await.0.0, 1001);
    assert!(child.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn signals_sent_as_soon_as_the_server_listens_are_handled() {
    // The listening line is printed once the signals are listened for: a
    // SIGHUP or SIGTERM sent the moment it is read used to meet the default
    // action now and then (4 times in 30 starts), ending the process.
    for round in 0..40 {
        let (mut child, _url) = start(&[guests::ECHO]);
        if round % 2 == 1 {
            let hup = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
            assert!(hup.success());
        }
        sigterm(&child);
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: {status}");
    }
}

#[tokio::test]
async fn out_of_file_descriptors_is_one_warning_and_the_server_recovers() {
    // 64 descriptors: more connections than that are held open below.
    let (mut child, url, logged) = start_piped(
        Command::new("bash")
            .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_ws-host")])
            .args(["run", guests::ECHO, "--port", "0"])
            .env("RUST_LOG", "warn"),
    );
    let addr: std::net::SocketAddr = url.trim_start_matches("ws://").parse().unwrap();

    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let warning = logged.recv_timeout(ws_host_tests::STEP).expect("a warning about accepting");
    assert!(warning.contains("cannot accept connections: Too many open files"), "{warning}");
    assert!(warning.contains("raise the open-file limit"), "{warning}");

    // Once the connections close, new ones are served again.
    drop(held);
    let mut client = Client::connect(&url).await;
    assert_eq!(client.auth("k").await, Message::AuthOk);
    assert_eq!(client.request("echo", vec![s("back")]).await.args, vec![s("back")]);
    sigterm(&child);
    assert_eq!(client.closed().await.0.0, 1001);
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = logged.iter().collect();
    assert!(rest.iter().all(|line| !line.contains("cannot accept")), "one warning, not one per retry: {rest:?}");
}

#[test]
fn logs_to_a_pipe_are_plain_text() {
    let (mut child, _url, logged) =
        start_piped(ws_host().args(["run", guests::ECHO, "--port", "0"]).env("RUST_LOG", "info"));
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    let stderr = logged.iter().collect::<Vec<_>>().join("\n");
    assert!(stderr.contains(" INFO ws_host::runtime::handler: loaded handler=echo"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "no colour codes outside a terminal: {stderr:?}");
}

/// On an AMD CPU the server runs itself again, keeping its process id, with
/// glibc's `rep movsb` copies turned off (it logs the tunables it runs
/// with); a threshold the user set is kept; a server started by a process
/// that restarted itself so (and handed down its marker, not its tunable)
/// restarts too.
#[tokio::test]
async fn on_amd_the_server_restarts_itself_with_fast_copies() {
    let ours = format!("{}=1073741824", ws_host::memcpy::TUNABLE);
    let users = format!("glibc.malloc.arena_max=2:{}=4096", ws_host::memcpy::TUNABLE);
    let amd = ws_host::memcpy::slow_rep_movsb();
    let parents_marker = [(ws_host::memcpy::RESTARTED, "1")];
    for (set, inherited, expected) in
        [(None, &[][..], &ours), (Some(&users), &[], &users), (None, &parents_marker, &ours)]
    {
        let mut command = ws_host();
        command
            .args(["run", guests::ECHO, "--port", "0"])
            .env("RUST_LOG", "ws_host=debug")
            .env_remove("GLIBC_TUNABLES")
            .env_remove(ws_host::memcpy::RESTARTED)
            .envs(inherited.iter().copied());
        if let Some(tunables) = set {
            command.env("GLIBC_TUNABLES", tunables);
        }
        let (mut child, url, logged) = start_piped(&mut command);
        // Served after the restart: a 16 KiB echo, the copies it is for.
        let text = "x".repeat(16 * 1024);
        let mut client = Client::connect(&url).await;
        assert_eq!(client.auth("").await, Message::AuthOk);
        assert_eq!(client.request("echo", vec![s(&text)]).await.args, vec![s(&text)]);
        sigterm(&child);
        assert!(child.wait().unwrap().success());
        let said: Vec<String> = logged.iter().filter(|line| line.contains("memcpy: GLIBC_TUNABLES=")).collect();
        match amd {
            true => assert!(said.len() == 1 && said[0].ends_with(&format!("GLIBC_TUNABLES={expected}")), "{said:?}"),
            false => assert!(said.is_empty(), "nothing to tune on this CPU: {said:?}"),
        }
    }
}

/// Restarted once already and still without the tunable (glibc drops
/// `GLIBC_TUNABLES` in secure mode): it says so and serves, no second restart.
/// The marker holds the process's own id, so a shell sets it and runs the
/// server in its place (`exec` keeps the id).
#[test]
fn a_tunable_glibc_dropped_is_one_warning_not_a_restart_loop() {
    let mut command = Command::new("sh");
    command
        .args(["-c", &format!(r#"{}=$$ exec "$0" "$@""#, ws_host::memcpy::RESTARTED), env!("CARGO_BIN_EXE_ws-host")])
        .args(["run", guests::ECHO, "--port", "0"])
        .env("RUST_LOG", "warn")
        .env_remove("GLIBC_TUNABLES");
    let (mut child, _url, logged) = start_piped(&mut command);
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    let warned = logged.iter().filter(|line| line.contains("glibc dropped GLIBC_TUNABLES")).count();
    assert_eq!(warned, usize::from(ws_host::memcpy::slow_rep_movsb()));
}

#[tokio::test]
async fn watch_swaps_when_the_file_changes() {
    let (dir, file) = counter_file("watch");
    let (mut child, url, logged) =
        start_piped(ws_host().args(["run", file.to_str().unwrap(), "--watch", "--port", "0"]));
    let mut client = Client::connect(&url).await;
    assert_eq!(client.auth("k").await, Message::AuthOk);
    assert_eq!(bump_until(&mut client, "v1").await, 1);

    // A file that is no handler is refused, once in the log; v1 serves on.
    std::fs::write(&file, b"not wasm").unwrap();
    let refusal = logged.recv_timeout(ws_host_tests::STEP).expect("a log line about the refused file");
    assert!(refusal.contains("swap refused, version 1 keeps serving: handler counter is not a WebAssembly component"));
    assert_eq!(bump_until(&mut client, "v1").await, 2);

    let beside = dir.join("counter.wasm.new");
    std::fs::copy(guests::COUNTER_V2, &beside).unwrap();
    std::fs::rename(&beside, &file).unwrap();
    assert!(bump_until(&mut client, "v2").await >= 3);
    sigterm(&child);
    assert_eq!(client.closed().await.0.0, 1001);
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = logged.iter().collect();
    assert!(rest.is_empty(), "one line for the refusal, nothing more at warn level: {rest:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn assert_contains_all(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn inspect_prints_the_event_table_hooks_and_world() {
    let text = succeeds(&["inspect", guests::CHAT]);
    assert_contains_all(
        &text,
        &[
            "chat: ezez handler",
            "  join(room: string) -> reply string[]\n",
            "  history(room: string, limit: number) -> reply { room: string; author: string; text: string; seq: number }[]\n",
            "  say(room: string, text: string) -> no reply  (typed call)\n",
            "  joined(to: target, room: string, nick: string)  (typed call)\n",
            "  said(to: target, msg: { room: string; author: string; text: string; seq: number })\n",
            "  auth.on-auth                yes",
            "  connected.on-auth-ok        no (default)",
            "WIT world:",
            "export example:chat/incoming;",
        ],
    );
    let stderr = fails(&["inspect", guests::BARE]);
    assert!(stderr.contains("bare is not a valid handler: it exports no `incoming` interface"), "{stderr}");
}

#[test]
fn wit_prints_the_host_package() {
    let text = succeeds(&["wit"]);
    assert_eq!(text, std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/server.wit")).unwrap());
}

#[test]
fn types_prints_typescript_for_the_client() {
    let text = succeeds(&["types", guests::FIXTURE]);
    assert_contains_all(
        &text,
        &[
            "export type OutgoingEvents = {",
            "    echoU64: [v: number | bigint];",
            "    echoRecord: [v: { x: number; y: number; longLabel?: string | null | undefined }];",
            "    pair: [a: string, b?: string | null | undefined];",
            "export type IncomingEvents = {",
            "    echoU64: [bigint];",
            "    echoTuple: [string, number];",
            "    echoVariant: [{ tag: \"circle\"; val: number } | { tag: \"square\"; val: { x: number; y: number; longLabel: string | null } } | { tag: \"empty\" }];",
            "    echoBytes: [Uint8Array];",
            "    ping: [n: number];",
            "    \"ezez-ws::error\": [message: string];",
        ],
    );
}

#[test]
fn run_needs_a_handler_or_a_route() {
    let stderr = fails(&["run"]);
    assert!(
        stderr.contains("no handler to serve: give a .wasm file, a --route PATH=FILE, or a config file"),
        "{stderr}"
    );
    let stderr = fails(&["run", "--route", "chat.wasm"]);
    assert!(stderr.contains("expected PATH=FILE"), "{stderr}");
}

#[tokio::test]
async fn a_config_file_says_what_the_flags_say_and_flags_override_it() {
    let dir = std::env::temp_dir().join(format!("ws-host-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(guests::ECHO, dir.join("echo.wasm")).unwrap();
    let file = dir.join("ws-host.toml");
    std::fs::write(
        &file,
        format!(
            "port = 1\nlog-format = \"json\"\n\n[routes]\n\"/echo\" = \"echo.wasm\"\n\"/chat\" = \"{}\"\n\n[limits]\nmax-payload-bytes = 1000\n",
            guests::CHAT
        ),
    )
    .unwrap();
    // Port 1 from the file is overridden by the flag; the payload limit holds.
    let mut child = ws_host()
        .args(["run", "--config", file.to_str().unwrap(), "--port", "0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("ws-host listening on ").unwrap().to_owned();
    let mut client = Client::connect(&format!("{url}/echo")).await;
    assert_eq!(client.auth("k").await, Message::AuthOk);
    assert_eq!(client.request("echo", vec![s("small")]).await.args, vec![s("small")]);
    client.send("echo", vec![s(&"x".repeat(2000))]).await;
    assert_eq!(client.closed().await.0.0, 1009);
    sigterm(&child);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("\"message\":\"loaded\""), "{stderr}");
    assert!(stderr.lines().all(|l| l.starts_with('{')), "JSON logs from the file: {stderr}");

    std::fs::write(&file, "port = 8080\nprot = 9\n").unwrap();
    let stderr = fails(&["run", "--config", file.to_str().unwrap()]);
    let expected = format!("error: {}, line 2, column 1: unknown field `prot`, expected one of", file.display());
    assert!(stderr.starts_with(&expected), "the error names the place, on one line: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_taken_port_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let stderr = fails(&["run", guests::ECHO, "--port", &port]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("error: cannot listen on 127.0.0.1:{port}: ")), "{stderr}");
    assert!(stderr.trim_end().ends_with("(pick another port, or stop what uses it)"), "{stderr}");
    assert_eq!(stderr.matches("in use").count(), 1, "the cause once: {stderr}");
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let stderr = fails(&["run", "/nonexistent/handler.wasm"]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr,
        "error: cannot read handler /nonexistent/handler.wasm: No such file or directory (os error 2)\n"
    );
}

#[test]
fn an_unreachable_or_malformed_cluster_url_is_a_one_line_error() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{free}");
    let stderr = fails(&["run", guests::ECHO, "--port", "0", "--cluster", &url]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("error: cannot reach the cluster's Redis at {url}")), "{stderr}");
    assert!(stderr.trim_end().ends_with("; start Redis there, or run without --cluster"), "{stderr}");
    let stderr = fails(&["run", guests::ECHO, "--port", "0", "--cluster", "http://example.com"]);
    assert!(stderr.starts_with("error: http://example.com is not a Redis URL"), "{stderr}");
    assert!(stderr.trim_end().ends_with("expected e.g. redis://127.0.0.1:6379"), "{stderr}");
}

#[test]
fn settings_that_cannot_work_are_one_line_errors() {
    let refused =
        |key: &str, flag: &str| format!("error: {key} ({flag}) is 0, which would refuse everything: give at least 1\n");
    let stderr = fails(&["run", guests::ECHO, "--port", "0", "--max-payload", "0"]);
    assert_eq!(stderr, refused("max-payload-bytes", "--max-payload"));
    let stderr = fails(&["run", guests::ECHO, "--port", "0", "--event-deadline-ms", "0"]);
    assert_eq!(stderr, refused("sandbox.event-deadline-ms", "--event-deadline-ms"));
    let file = std::env::temp_dir().join(format!("ws-host-zero-fuel-{}.toml", std::process::id()));
    std::fs::write(&file, "[limits.sandbox]\nfuel = 0\n").unwrap();
    let stderr = fails(&["run", guests::ECHO, "--port", "0", "--config", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(stderr, refused("sandbox.fuel", "--fuel"));

    // Too little memory to start: the error says which setting to raise.
    let stderr = fails(&["run", guests::ECHO, "--port", "0", "--memory-limit", "1000"]);
    assert!(
        stderr.starts_with("error: handler echo failed while starting: its memory (linear memories and tables together) was refused growth to "),
        "{stderr}"
    );
    assert!(stderr.contains("over the limit of 1000 bytes (raise it with `--memory-limit`)"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let route = format!("/a={}", guests::ECHO);
    let stderr = fails(&["run", "--port", "0", "--route", &route, "--route", &route]);
    assert_eq!(stderr, "error: --route /a is given twice: a path has one handler\n");
}

#[test]
fn a_file_that_is_not_a_handler_is_a_one_line_error() {
    let garbage = std::env::temp_dir().join(format!("ws-host-garbage-{}.wasm", std::process::id()));
    std::fs::write(&garbage, b"definitely not wasm").unwrap();
    let stderr = fails(&["run", garbage.to_str().unwrap()]);
    std::fs::remove_file(&garbage).unwrap();
    assert!(stderr.contains("is not a WebAssembly component"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let stderr = fails(&["run", guests::BARE]);
    assert!(stderr.contains("bare is not a valid handler: it exports no `incoming` interface"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("it exports no").count(), 1, "the cause once: {stderr}");
}

#[test]
fn every_command_has_help() {
    for args in [&["--help"][..], &["run", "--help"], &["types", "--help"], &["inspect", "--help"], &["wit", "--help"]]
    {
        let text = succeeds(args);
        assert!(text.contains("Usage: ws-host"), "{text}");
    }
}

#[test]
fn a_handler_that_blocks_or_hangs_while_starting() {
    // Guest code run at instantiation may wait on WASI: it runs off the
    // runtime's threads, so the server starts.
    let (mut child, _url) = start(&[guests::BLOCKING_START]);
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    // Guest code that never returns is stopped by the deadline: one line.
    let stderr = fails(&["run", guests::SPINNING_START, "--port", "0", "--event-deadline-ms", "100"]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: handler spinning-start failed while starting: stopped at the deadline of 100 ms")
    );
}
