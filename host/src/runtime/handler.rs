//! A loaded handler: its schema, its client registry and the actor thread
//! that owns its one instance and feeds it one event at a time.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use wasmtime::component::{Component, InstancePre, Linker, Val};

use super::Runtime;
use super::bindings::{self, Request};
use super::host::HostState;
use super::instance::Live;
use super::schema::{Schema, SchemaError};
use crate::bridge::{from_wit, to_wit};
use crate::codec::{ERROR, Event, OutgoingEvent, Value};
use crate::config::Config;
use crate::registry::{ClientId, Registry};

/// Facts about the HTTP request that opened a connection.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub path: String,
    pub query: String,
    /// Lowercase names and values, in the order received.
    pub headers: Vec<(String, String)>,
    pub remote_addr: Option<SocketAddr>,
}

/// Why a handler could not be loaded. Each variant names the phase.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read handler {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("handler {name} is not a WebAssembly component: {}", one_line(cause))]
    Compile { name: String, cause: wasmtime::Error },
    #[error("{name} is not a valid handler: {source}")]
    Schema { name: String, source: SchemaError },
    #[error("handler {name} cannot be linked: {cause:#}")]
    Link { name: String, cause: wasmtime::Error },
    #[error("handler {name} failed while starting: {cause:#}")]
    Start { name: String, cause: wasmtime::Error },
}

/// An error and its causes on one line (wasmparser prints byte arrays over
/// several).
fn one_line(error: &wasmtime::Error) -> String {
    format!("{error:#}").split_whitespace().collect::<Vec<_>>().join(" ")
}

enum Job {
    Auth { client: ClientId, key: String, request: RequestInfo, verdict: oneshot::Sender<Result<(), String>> },
    AuthOk { client: ClientId },
    Event { client: ClientId, event_id: u64, name: String, args: Vec<Val> },
    Disconnect { client: ClientId, code: u16, reason: String, notify_guest: bool, done: oneshot::Sender<()> },
}

impl Job {
    fn kind(&self) -> &'static str {
        match self {
            Job::Auth { .. } => "auth",
            Job::AuthOk { .. } => "auth-ok",
            Job::Event { .. } => "event",
            Job::Disconnect { .. } => "disconnect",
        }
    }
}

struct Shared {
    name: Arc<str>,
    schema: Schema,
    registry: Arc<Registry>,
    jobs: mpsc::Sender<Job>,
}

/// A running handler; cheap to clone. The actor stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct Handler {
    shared: Arc<Shared>,
}

impl Handler {
    /// Reads, compiles, checks and starts the handler in the file `path`.
    pub fn load_file(runtime: &Runtime, path: &Path, config: &Config) -> Result<Handler, LoadError> {
        let bytes =
            std::fs::read(path).map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
        let name = path.file_stem().map_or_else(|| "handler".into(), |s| s.to_string_lossy().into_owned());
        Handler::load(runtime, &name, &bytes, config)
    }

    /// Compiles and checks a component, links it, starts one instance and the
    /// actor that feeds it.
    pub fn load(runtime: &Runtime, name: &str, bytes: &[u8], config: &Config) -> Result<Handler, LoadError> {
        let name: Arc<str> = name.into();
        let engine = runtime.engine();
        let started = std::time::Instant::now();
        if !bytes.starts_with(b"\0asm") {
            let cause =
                wasmtime::format_err!("no WebAssembly header (a handler is a .wasm component built for wasm32-wasip2)");
            return Err(LoadError::Compile { name: name.to_string(), cause });
        }
        let component =
            Component::new(engine, bytes).map_err(|cause| LoadError::Compile { name: name.to_string(), cause })?;
        tracing::debug!(handler = %name, elapsed = ?started.elapsed(), bytes = bytes.len(), "compiled");
        let schema =
            Schema::read(engine, &component).map_err(|source| LoadError::Schema { name: name.to_string(), source })?;
        let pre =
            link(engine, &component, &schema).map_err(|cause| LoadError::Link { name: name.to_string(), cause })?;

        let registry = Registry::new(config.outbound_queue);
        let live = Live::start(&pre, name.clone(), registry.clone(), &config.sandbox)
            .map_err(|cause| LoadError::Start { name: name.to_string(), cause })?;
        let (jobs, queue) = mpsc::channel(config.sandbox.event_queue.max(1));
        let shared = Arc::new(Shared { name: name.clone(), schema, registry, jobs });
        let actor = Actor { shared: Arc::downgrade(&shared), pre, live: Some(live), config: config.clone(), name };
        std::thread::Builder::new()
            .name(format!("handler-{}", shared.name))
            .spawn(move || actor.run(queue))
            .map_err(|e| LoadError::Start { name: shared.name.to_string(), cause: e.into() })?;
        Ok(Handler { shared })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn schema(&self) -> &Schema {
        &self.shared.schema
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    /// Runs the handler's auth decision; `Err` carries the rejection reason.
    pub async fn authenticate(&self, client: ClientId, key: String, request: RequestInfo) -> Result<(), String> {
        let (verdict, answer) = oneshot::channel();
        self.submit(Job::Auth { client, key, request, verdict }).await;
        answer.await.unwrap_or_else(|_| Err("Auth check failed".into()))
    }

    /// Tells the handler a client is accepted (after auth-ok went out).
    pub async fn auth_ok(&self, client: ClientId) {
        self.submit(Job::AuthOk { client }).await;
    }

    /// Checks an event against the handler's declared types and, if it fits,
    /// queues it; otherwise the client gets an `ezez-ws::error` reply saying
    /// what did not fit. Waits while the handler's queue is full.
    pub async fn dispatch(&self, client: ClientId, event: Event) {
        match self.convert(&event) {
            Ok(args) => self.submit(Job::Event { client, event_id: event.id, name: event.name, args }).await,
            Err(message) => {
                tracing::debug!(handler = %self.shared.name, client, "refused event: {message}");
                reply_error(&self.shared.registry, client, event.id, message);
            }
        }
    }

    /// Tells the handler a client is gone and waits until it has seen it;
    /// the registry forgets the client after that (so `on-disconnect` can
    /// still read its context and rooms).
    pub async fn disconnected(&self, client: ClientId, code: u16, reason: String) {
        let notify_guest = self.shared.registry.is_authenticated(client);
        let (done, seen) = oneshot::channel();
        self.submit(Job::Disconnect { client, code, reason, notify_guest, done }).await;
        let _ = seen.await;
    }

    async fn submit(&self, job: Job) {
        if self.shared.jobs.send(job).await.is_err() {
            tracing::error!(handler = %self.shared.name, "handler actor is gone");
        }
    }

    /// Wire arguments -> WIT values, or the error message for the client.
    fn convert(&self, event: &Event) -> Result<Vec<Val>, String> {
        let schema = &self.shared.schema;
        if event.name.starts_with(crate::codec::RESERVED_PREFIX) {
            return Err(format!("{:?} is a reserved event name", event.name));
        }
        let Some(declared) = schema.incoming.get(&event.name) else {
            let mut known: Vec<_> = schema.incoming.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(format!("unknown event {:?} (this handler accepts: {})", event.name, known.join(", ")));
        };
        let params = &declared.params;
        let required = params.iter().rposition(|(_, ty)| !matches!(ty, wasmtime::component::types::Type::Option(_)));
        let required = required.map_or(0, |i| i + 1);
        if event.args.len() < required || event.args.len() > params.len() {
            let names: Vec<_> = params.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "{}: expected {} argument{} ({}), got {}",
                event.name,
                params.len(),
                if params.len() == 1 { "" } else { "s" },
                names.join(", "),
                event.args.len()
            ));
        }
        params
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| {
                let value = event.args.get(i).unwrap_or(&Value::Undefined);
                to_wit(value, ty).map_err(|m| format!("{}: argument {} ({name}): {m}", event.name, i + 1))
            })
            .collect()
    }
}

fn link(engine: &wasmtime::Engine, component: &Component, schema: &Schema) -> wasmtime::Result<InstancePre<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::HandlerWithLifecycle::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
    if let Some((interface, events)) = &schema.outgoing {
        super::outgoing::add_to_linker(&mut linker, interface, events)?;
    }
    linker.instantiate_pre(component)
}

fn reply_error(registry: &Registry, client: ClientId, event_id: u64, message: String) {
    registry.send_to(client, Arc::new(OutgoingEvent::new(ERROR, Some(event_id), vec![Value::String(message)])));
}

/// The thread that owns the instance.
struct Actor {
    shared: std::sync::Weak<Shared>,
    pre: InstancePre<HostState>,
    live: Option<Live>,
    config: Config,
    name: Arc<str>,
}

impl Actor {
    fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        while let Some(job) = queue.blocking_recv() {
            let Some(shared) = self.shared.upgrade() else { break };
            self.handle(&shared, job);
        }
        tracing::debug!(handler = %self.name, "handler stopped");
    }

    fn handle(&mut self, shared: &Shared, job: Job) {
        tracing::trace!(handler = %self.name, job = job.kind(), "job");
        let schema = &shared.schema;
        let registry = &shared.registry;
        match job {
            Job::Auth { client, key, request, verdict } => {
                let request = to_wit_request(&request);
                let outcome = self
                    .call("on-auth", |live| live.on_auth(&schema.lifecycle, client, &key, &request))
                    .unwrap_or_else(|| Err("Auth check failed".into()));
                let _ = verdict.send(outcome);
            }
            Job::AuthOk { client } => {
                self.call("on-auth-ok", |live| live.on_auth_ok(&schema.lifecycle, client));
            }
            Job::Event { client, event_id, name, args } => {
                let Some(event) = schema.incoming.get(&name) else { return };
                match self.call(&event.wit_name, |live| live.call_event(event, client, args)) {
                    Some(results) if results.is_empty() => {}
                    Some(results) => {
                        let args = reply_args(&results, &event.results);
                        registry.send_to(client, Arc::new(OutgoingEvent::new(name, Some(event_id), args)));
                    }
                    None => {
                        let message = format!("{name}: the handler failed on this event");
                        reply_error(registry, client, event_id, message);
                    }
                }
            }
            Job::Disconnect { client, code, reason, notify_guest, done } => {
                if notify_guest {
                    self.call("on-disconnect", |live| live.on_disconnect(&schema.lifecycle, client, code, &reason));
                }
                registry.remove(client);
                let _ = done.send(());
            }
        }
    }

    /// Runs `f` on the instance, starting a fresh one if the last trapped.
    /// A failure is logged with the handler and what it was doing, and the
    /// instance is dropped; `None` tells the caller it failed.
    fn call<R>(&mut self, what: &str, f: impl FnOnce(&mut Live) -> wasmtime::Result<R>) -> Option<R> {
        if self.live.is_none() {
            let shared = self.shared.upgrade()?;
            match Live::start(&self.pre, self.name.clone(), shared.registry.clone(), &self.config.sandbox) {
                Ok(live) => self.live = Some(live),
                Err(error) => {
                    tracing::error!(handler = %self.name, "cannot start a fresh instance: {error:#}");
                    return None;
                }
            }
        }
        let live = self.live.as_mut()?;
        match f(live) {
            Ok(result) => Some(result),
            Err(error) => {
                tracing::warn!(handler = %self.name, event = what, "handler failed, replacing its instance: {error:#}");
                self.live = None;
                if let Some(shared) = self.shared.upgrade() {
                    match Live::start(&self.pre, self.name.clone(), shared.registry.clone(), &self.config.sandbox) {
                        Ok(live) => self.live = Some(live),
                        Err(error) => tracing::error!(handler = %self.name, "cannot start a fresh instance: {error:#}"),
                    }
                }
                None
            }
        }
    }
}

/// A reply's arguments: the result, or the items of a returned tuple.
fn reply_args(results: &[Val], types: &[wasmtime::component::types::Type]) -> Vec<Value> {
    use wasmtime::component::types::Type;
    match (results, types) {
        ([Val::Tuple(items)], [Type::Tuple(tuple)]) => {
            items.iter().zip(tuple.types()).map(|(v, t)| from_wit(v, &t)).collect()
        }
        _ => results.iter().zip(types).map(|(v, t)| from_wit(v, t)).collect(),
    }
}

fn to_wit_request(request: &RequestInfo) -> Request {
    Request {
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        remote_addr: request.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
    }
}
