//! Test support: the compiled guests, an in-process server on port 0, and a
//! small ezez client over a real WebSocket.

pub mod native;
pub mod redis;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ws_host::codec::{Codec, Event, Frame, Message, Value};
use ws_host::{Config, Handler, Runtime};

/// Paths of the compiled guest components (built by `build.rs`).
pub mod guests {
    pub const ECHO: &str = env!("GUEST_ECHO");
    pub const CHAT: &str = env!("GUEST_CHAT");
    /// The same chat contract, in Python (examples/chat-py).
    pub const CHAT_PY: &str = env!("GUEST_CHAT_PY");
    /// The same chat contract, in JavaScript (examples/chat-js).
    pub const CHAT_JS: &str = env!("GUEST_CHAT_JS");
    pub const RAW_ECHO: &str = env!("GUEST_RAW_ECHO");
    pub const FIXTURE: &str = env!("GUEST_FIXTURE");
    pub const BARE: &str = env!("GUEST_BARE");
    pub const BAD_TYPES: &str = env!("GUEST_BAD_TYPES");
    pub const COUNTER_V1: &str = env!("GUEST_COUNTER_V1");
    pub const COUNTER_V2: &str = env!("GUEST_COUNTER_V2");
    pub const COUNTER_V3: &str = env!("GUEST_COUNTER_V3");
    pub const COUNTER_BIG: &str = env!("GUEST_COUNTER_BIG");
    pub const FANOUT: &str = env!("GUEST_FANOUT");
    /// Hand-written (guests/wat): waits on a WASI timer while instantiated.
    pub const BLOCKING_START: &str = env!("GUEST_BLOCKING_START");
    /// Hand-written (guests/wat): never returns from instantiation.
    pub const SPINNING_START: &str = env!("GUEST_SPINNING_START");
    /// Hand-written (guests/wat): `hoard` takes WASI timers until refused.
    pub const HOARDER: &str = env!("GUEST_HOARDER");
    /// Hand-written (guests/wat): grows four memories and a table on request.
    pub const SPREADER: &str = env!("GUEST_SPREADER");
    /// Hand-written (guests/wat): replies with as many bytes as asked.
    pub const COPIER: &str = env!("GUEST_COPIER");
}

/// Longest any single step may take before a test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(10);

/// Everything ws-host logged at debug level and above in this test binary
/// (handler names tell tests apart).
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the log for [`logs`]; `RUST_LOG=ws_host=debug cargo test` also
/// prints it.
fn capture_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, fmt};
    let capture = fmt::layer().with_ansi(false).with_writer(|| Capture).with_filter(EnvFilter::new("ws_host=debug"));
    let console = std::env::var_os("RUST_LOG")
        .map(|_| fmt::layer().with_test_writer().with_filter(EnvFilter::from_default_env()));
    let _ = tracing_subscriber::registry().with(capture).with(console).try_init();
}

/// Fields of a `/proc/.../stat` file (a process's or a thread's), read at
/// once and numbered as in proc(5); they are counted after the name in
/// parentheses (field 2), which may hold spaces.
pub fn proc_stat_fields<const N: usize>(stat_path: impl AsRef<std::path::Path>, numbers: [usize; N]) -> [u64; N] {
    let path = stat_path.as_ref();
    let stat = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, after_name) = stat.rsplit_once(')').unwrap_or_else(|| panic!("{}: no name in parentheses", path.display()));
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    numbers.map(|n| {
        let field = fields.get(n - 3).and_then(|f| f.parse().ok());
        field.unwrap_or_else(|| panic!("{}: no number in field {n}", path.display()))
    })
}

/// One engine for the whole test binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new().expect("engine"))
}

/// An engine with fuel metering.
pub fn fuel_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::with_options(&ws_host::RuntimeOptions { fuel: true, ..Default::default() }).expect("engine")
    })
}

/// A server on a free port, serving one handler in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handler: Handler,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(wasm: &str) -> TestServer {
        TestServer::with_config(wasm, Config::default()).await
    }

    pub async fn with_config(wasm: &str, config: Config) -> TestServer {
        let name = std::path::Path::new(wasm).file_stem().unwrap().to_string_lossy().into_owned();
        TestServer::named(&name, wasm, config, runtime()).await
    }

    /// A server whose handler has this name (log lines carry it), on a
    /// given runtime.
    pub async fn named(name: &str, wasm: &str, config: Config, runtime: &Runtime) -> TestServer {
        capture_logs();
        let bytes = std::fs::read(wasm).expect("read guest");
        let handler = Handler::load(runtime, name, &bytes, &config).expect("load handler");
        TestServer::serving(handler, config).await
    }

    /// A server for a handler made elsewhere (a native one, say).
    pub async fn serving(handler: Handler, config: Config) -> TestServer {
        capture_logs();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(ws_host::server::serve(listener, handler.clone(), config, async {
            let _ = rx.await;
        }));
        TestServer { addr, handler, shutdown: Some(tx), task: Some(task) }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// A client that has passed auth with `key`.
    pub async fn client(&self, key: &str) -> Client {
        let mut client = Client::connect(&self.url()).await;
        assert_eq!(client.auth(key).await, Message::AuthOk);
        client
    }

    /// Shuts down gracefully and waits for the server to finish.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(STEP * 2, self.task.take().unwrap()).await.expect("shutdown in time").unwrap().unwrap();
    }
}

/// The events among `messages` (what [`Client::closed`] saw), as the
/// request each answers, its name and its arguments.
pub fn replies(messages: Vec<Message>) -> Vec<(Option<u64>, String, Vec<Value>)> {
    messages
        .into_iter()
        .filter_map(|message| match message {
            Message::Event(event) => Some((event.reply_to, event.name, event.args)),
            _ => None,
        })
        .collect()
}

/// Checks until `check` passes, for up to [`STEP`], for what a test can
/// only observe by looking (counters, the registry, open files); `Err` says
/// what was seen, and is the panic message if the time runs out.
pub async fn eventually(mut check: impl FnMut() -> Result<(), String>) {
    let deadline = tokio::time::Instant::now() + STEP;
    while let Err(seen) = check() {
        assert!(tokio::time::Instant::now() < deadline, "{seen}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A client speaking the ezez protocol with ws-host's own codec.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    pub codec: Codec,
    /// Events received while waiting for something else.
    backlog: Vec<Event>,
    /// Pings read so far (tungstenite answers each as it reads it).
    pub pings: usize,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Client { ws, next_id: 0, codec: Codec::Binary, backlog: Vec::new(), pings: 0 }
    }

    /// Connects as a client that does not wait for the `101`: the upgrade
    /// request and `first` leave in one write, so the server reads the
    /// frame along with the request.
    pub async fn connect_sending(addr: SocketAddr, path: &str, first: &Message) -> Client {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};
        let mut frame = std::io::Cursor::new(Vec::new());
        WebSocket::from_raw_socket(&mut frame, Role::Client, None)
            .send(Codec::Binary.encode(first).into())
            .expect("encode the frame");
        let mut bytes = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .into_bytes();
        bytes.extend_from_slice(frame.get_ref());
        let upgrade = async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(&bytes).await.expect("send");
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(stream.read_u8().await.expect("read the response"));
            }
            assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
            stream
        };
        let stream = tokio::time::timeout(STEP, upgrade).await.expect("upgraded in time");
        let ws = WebSocketStream::from_raw_socket(MaybeTlsStream::Plain(stream), Role::Client, None).await;
        Client { ws, next_id: 0, codec: Codec::Binary, backlog: Vec::new(), pings: 0 }
    }

    pub async fn send_frame(&mut self, frame: WsMessage) {
        self.ws.send(frame).await.expect("send");
    }

    pub async fn send_message(&mut self, message: &Message) {
        self.send_frame(self.codec.encode(message).into()).await;
    }

    /// Sends the auth frame and returns the server's answer.
    pub async fn auth(&mut self, key: &str) -> Message {
        self.send_message(&Message::Auth { key: key.into(), version: Value::Number(1.0) }).await;
        self.recv().await
    }

    /// Sends an event; returns its id.
    pub async fn send(&mut self, name: &str, args: Vec<Value>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send_message(&Message::Event(Event { name: name.into(), id, reply_to: None, args })).await;
        id
    }

    /// Sends an event and waits for the reply to it (an error reply too).
    pub async fn request(&mut self, name: &str, args: Vec<Value>) -> Event {
        let id = self.send(name, args).await;
        self.reply_to(id).await
    }

    /// Waits for the reply to event `id`, keeping other events for later.
    pub async fn reply_to(&mut self, id: u64) -> Event {
        if let Some(i) = self.backlog.iter().position(|e| e.reply_to == Some(id)) {
            return self.backlog.remove(i);
        }
        loop {
            match self.recv().await {
                Message::Event(e) if e.reply_to == Some(id) => return e,
                Message::Event(e) => self.backlog.push(e),
                other => panic!("expected the reply to {id}, got {other:?}"),
            }
        }
    }

    /// The next event that is not a reply (from the backlog first).
    pub async fn next_event(&mut self) -> Event {
        if let Some(i) = self.backlog.iter().position(|e| e.reply_to.is_none()) {
            return self.backlog.remove(i);
        }
        loop {
            match self.recv().await {
                Message::Event(e) if e.reply_to.is_none() => return e,
                Message::Event(e) => self.backlog.push(e),
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// Whether events arrived while waiting for something else.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// The next protocol message.
    pub async fn recv(&mut self) -> Message {
        loop {
            let frame = tokio::time::timeout(STEP, self.ws.next()).await.expect("a message in time");
            match frame.expect("connection open").expect("read") {
                WsMessage::Binary(b) => return Codec::decode(&Frame::Binary(b)).expect("decodable"),
                WsMessage::Text(t) => return Codec::decode(&Frame::Text(t.to_string())).expect("decodable"),
                WsMessage::Close(frame) => panic!("closed while waiting for a message: {frame:?}"),
                WsMessage::Ping(_) => self.pings += 1,
                _ => continue,
            }
        }
    }

    /// Reads, and so answers, pings until `count` have come in all; anything
    /// else fails the test.
    pub async fn answer_pings(&mut self, count: usize) {
        while self.pings < count {
            let frame = tokio::time::timeout(STEP, self.ws.next()).await.expect("a ping in time");
            match frame.expect("connection open").expect("read") {
                WsMessage::Ping(_) => self.pings += 1,
                other => panic!("expected a ping, got {other:?}"),
            }
        }
    }

    /// The next text frame, as it is.
    pub async fn next_text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(STEP, self.ws.next()).await.expect("a message in time");
            match frame.expect("connection open").expect("read") {
                WsMessage::Text(t) => return t.to_string(),
                WsMessage::Close(frame) => panic!("closed while waiting for text: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Reads until the server closes; returns its close code and reason.
    /// Messages received on the way are returned too.
    pub async fn closed(&mut self) -> ((u16, String), Vec<Message>) {
        let mut seen = Vec::new();
        let close = loop {
            let frame = tokio::time::timeout(STEP, self.ws.next()).await.expect("close in time");
            match frame {
                Some(Ok(WsMessage::Close(Some(f)))) => break (f.code.into(), f.reason.to_string()),
                Some(Ok(WsMessage::Close(None))) => break (1005, String::new()),
                Some(Ok(WsMessage::Binary(b))) => seen.push(Codec::decode(&Frame::Binary(b)).expect("decodable")),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed instead of closing: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        };
        // Keep reading so the reply to the close goes out, as a real client does.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(STEP, self.ws.next()).await {}
        (close, seen)
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(STEP, self.ws.next()).await {}
    }
}

/// Loads a guest as an endpoint with the default config.
pub fn endpoint(wasm: &str) -> ws_host::server::Endpoint {
    endpoint_with(wasm, Config::default())
}

/// Loads a guest as an endpoint with `config`.
pub fn endpoint_with(wasm: &str, config: Config) -> ws_host::server::Endpoint {
    let handler = Handler::load_file(runtime(), wasm.as_ref(), &config).expect("load handler");
    ws_host::server::Endpoint::new(handler, config)
}

/// A plain HTTP/1.1 GET over a fresh connection: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(STEP, stream.read_to_string(&mut response)).await.expect("response in time").expect("read");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// The HTTP status a WebSocket connection attempt was refused with.
pub async fn refused_with(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the upgrade was accepted"),
    }
}

/// `Value::String`.
pub fn s(text: &str) -> Value {
    Value::String(text.into())
}

/// `Value::Number`.
pub fn n(number: f64) -> Value {
    Value::Number(number)
}

/// An object from key-value pairs.
pub fn obj(entries: &[(&str, Value)]) -> Value {
    Value::Object(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}
