//! A running handler: its current version, its client registry and the
//! queue of its actor. The public face of the runtime.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::Runtime;
use super::actor::{AUTH_CHECK_FAILED, Actor, Job, Queued, QueuedEvent, reply_error};
use super::metrics::{Refusal, Snapshot};
use super::native::{self, NativeHandler};
use super::scheduling;
use super::schema::Schema;
use super::version::{CacheUse, LoadError, Version, prepare};
use crate::codec::{Event, Frame, Value};
use crate::config::Config;
use crate::registry::{ClientId, Control, Registry};

/// Facts about the HTTP request that opened a connection.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub path: String,
    pub query: String,
    /// Lowercase names and values, in the order received.
    pub headers: Vec<(String, String)>,
    pub remote_addr: Option<SocketAddr>,
}

pub(super) struct Shared {
    pub(super) name: Arc<str>,
    pub(super) registry: Arc<Registry>,
    /// The version new events are checked against; watchable.
    pub(super) current: watch::Sender<Arc<Version>>,
    jobs: mpsc::Sender<Job>,
    queue_bytes: ByteBudget,
    /// `None` for a native handler: nothing to compile, nothing to swap.
    runtime: Option<Runtime>,
    pub(super) config: Config,
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
        let bytes = read(path)?;
        let name = path.file_stem().map_or_else(|| "handler".into(), |s| s.to_string_lossy().into_owned());
        Handler::load(runtime, &name, &bytes, config)
    }

    /// Compiles and checks a component, links it, starts one instance and the
    /// actor that feeds it. Compiling blocks the calling thread (seconds for
    /// a large component without the compile cache): from async code that is
    /// already serving, call it through `tokio::task::spawn_blocking`. The
    /// instance itself starts on a thread of its own, never the caller's.
    pub fn load(runtime: &Runtime, name: &str, bytes: &[u8], config: &Config) -> Result<Handler, LoadError> {
        let name: Arc<str> = name.into();
        let registry = Registry::for_config(config);
        let candidate = prepare(runtime, &name, bytes, 1, &registry, config)?;
        log_version(&name, &candidate.version, "loaded");
        let version = candidate.version.clone();
        let (actor_name, actor_config, ticker) = (name.clone(), config.clone(), runtime.ticker.clone());
        let feed = move |shared, queue| {
            let actor = Actor {
                shared,
                pre: candidate.pre,
                ticker,
                live: Some(candidate.live),
                version: candidate.version,
                config: actor_config,
                name: actor_name,
            };
            actor.run(queue)
        };
        Handler::start(name, registry, version, Some(runtime.clone()), config, feed)
    }

    /// Serves a handler written in Rust (see [`NativeHandler`]): the same
    /// server, registry and queue as a component, without the sandbox.
    pub fn native(name: &str, handler: impl NativeHandler, config: &Config) -> Result<Handler, LoadError> {
        let version = Version {
            number: 1,
            digest: "native".into(),
            size: 0,
            loaded_at: SystemTime::now(),
            compile_time: Duration::ZERO,
            compile_cache: CacheUse::Off,
            schema: Schema::native(),
        };
        let registry = Registry::for_config(config);
        let handler: Box<dyn NativeHandler> = Box::new(handler);
        let feed = move |shared, queue| native::run(handler, shared, queue);
        Handler::start(name.into(), registry, Arc::new(version), None, config, feed)
    }

    /// The state every clone shares, and the thread that feeds the queued
    /// jobs to the handler (`feed`: the WebAssembly actor or a native one).
    fn start(
        name: Arc<str>,
        registry: Arc<Registry>,
        version: Arc<Version>,
        runtime: Option<Runtime>,
        config: &Config,
        feed: impl FnOnce(Weak<Shared>, mpsc::Receiver<Job>) + Send + 'static,
    ) -> Result<Handler, LoadError> {
        let (jobs, queue) = mpsc::channel(config.sandbox.event_queue.max(1));
        let shared = Arc::new(Shared {
            name: name.clone(),
            registry,
            current: watch::Sender::new(version),
            jobs,
            queue_bytes: ByteBudget::new(config.sandbox.event_queue_bytes),
            runtime,
            config: config.clone(),
        });
        let weak = Arc::downgrade(&shared);
        let thread_name = name.clone();
        std::thread::Builder::new()
            .name(format!("handler-{name}"))
            .spawn(move || {
                scheduling::batch_this_thread(&thread_name);
                feed(weak, queue)
            })
            .map_err(|e| LoadError::Start { name: name.to_string(), cause: e.into() })?;
        Ok(Handler { shared })
    }

    /// Checks a component the way loading it would (compile, read its
    /// events, link, start one instance) and returns what it declares,
    /// without serving it.
    pub fn check(runtime: &Runtime, name: &str, bytes: &[u8], config: &Config) -> Result<Arc<Version>, LoadError> {
        let registry = Registry::for_config(config);
        Ok(prepare(runtime, &name.into(), bytes, 1, &registry, config)?.version)
    }

    /// Replaces the running version with the component in `bytes`, while
    /// clients stay connected. The candidate is compiled, checked and started
    /// off the event path; if anything fails the running version keeps
    /// serving and the error says why. Events queued before the swap finish
    /// on the old version, later ones run on the new; if both versions
    /// export `ws-host:server/state`, the new one starts with the old one's
    /// state.
    pub async fn swap(&self, bytes: Vec<u8>) -> Result<Arc<Version>, LoadError> {
        let outcome = self.install(bytes).await;
        if let Err(error) = &outcome {
            tracing::warn!(
                handler = %self.name(),
                "swap refused, version {} keeps serving: {error}",
                self.version().number
            );
        }
        outcome
    }

    /// Prepares the candidate off the event path, then has the actor
    /// install it between two jobs.
    async fn install(&self, bytes: Vec<u8>) -> Result<Arc<Version>, LoadError> {
        let shared = self.shared.clone();
        let Some(runtime) = shared.runtime.clone() else {
            return Err(LoadError::Native { name: self.name().into() });
        };
        // The actor numbers the version when it installs it.
        let candidate = tokio::task::spawn_blocking(move || {
            prepare(&runtime, &shared.name, &bytes, 0, &shared.registry, &shared.config)
        })
        .await
        .map_err(|_| LoadError::Stopped { name: self.name().into() })??;
        let (done, outcome) = oneshot::channel();
        self.submit(Job::Swap { candidate: Box::new(candidate), done }).await;
        outcome.await.map_err(|_| LoadError::Stopped { name: self.name().into() })?
    }

    /// [`swap`](Self::swap) with the component in the file `path`.
    pub async fn swap_file(&self, path: &Path) -> Result<Arc<Version>, LoadError> {
        let bytes = read(path)?;
        self.swap(bytes).await
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The version serving new events.
    pub fn version(&self) -> Arc<Version> {
        self.shared.current.borrow().clone()
    }

    /// Follows the version serving new events (it changes on each swap).
    pub fn versions(&self) -> watch::Receiver<Arc<Version>> {
        self.shared.current.subscribe()
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    /// What this handler counted so far.
    pub fn metrics(&self) -> Snapshot {
        self.shared.registry.metrics().snapshot()
    }

    /// Runs the handler's auth decision; `Err` carries the rejection reason.
    pub async fn authenticate(&self, client: ClientId, key: String, request: RequestInfo) -> Result<(), String> {
        let (verdict, answer) = oneshot::channel();
        self.submit(Job::Auth { client, key, request: Box::new(request), verdict }).await;
        answer.await.unwrap_or_else(|_| Err(AUTH_CHECK_FAILED.into()))
    }

    /// Tells the handler a client is accepted (after auth-ok went out).
    pub async fn auth_ok(&self, client: ClientId) {
        self.submit(Job::AuthOk { client }).await;
    }

    /// Checks an event against the handler's declared types and, if it fits,
    /// queues it; otherwise the client gets an `ezez-ws::error` reply saying
    /// what did not fit. Waits while the handler's queue is full, or already
    /// holds as many of this client's events as it may (see
    /// [`crate::registry::Place`]).
    pub async fn dispatch(&self, client: ClientId, control: &Arc<Control>, mut event: Event) {
        let version = self.version();
        let size = Value::size_hint_of(&event.args);
        // A native handler checks its own arguments.
        let checked = match self.shared.runtime {
            None => {
                self.shared.registry.metrics().event_in(&event.name);
                None
            }
            Some(_) => match version.schema.convert(&mut event) {
                Ok(checked) => {
                    version.schema.event(checked.event).counters.arrived();
                    Some(checked)
                }
                Err(message) => {
                    self.shared.registry.metrics().refused(Refusal::DoesNotFit);
                    tracing::debug!(handler = %self.shared.name, client, "refused event: {message}");
                    return reply_error(&self.shared.registry, client, event.id, message);
                }
            },
        };
        let queued = self.queue(control, size).await;
        self.submit(Job::Event(Box::new(QueuedEvent { client, event, checked, version, queued }))).await
    }

    /// Hands a whole message to a raw handler. Waits as `dispatch` does.
    pub async fn dispatch_raw(&self, client: ClientId, control: &Arc<Control>, frame: Frame) {
        self.shared.registry.metrics().event_in("raw");
        let queued = self.queue(control, frame.payload_len()).await;
        self.submit(Job::Raw { client, frame, queued }).await;
    }

    /// A client's place and `bytes` of the budget for one of its events.
    async fn queue(&self, control: &Arc<Control>, bytes: usize) -> Queued {
        let registry = &self.shared.registry;
        let place = control.place(registry).await;
        Queued::new(self.shared.queue_bytes.hold(bytes, registry).await, place)
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

    /// Waits until the handler has done every job queued before this call:
    /// the replies to the events a client sent so far are then in its
    /// outbox.
    pub async fn caught_up(&self) {
        let (done, seen) = oneshot::channel();
        self.submit(Job::CatchUp { done }).await;
        let _ = seen.await;
    }

    /// Queues a job; waits while the queue is full (see
    /// [`Registry::wait_for_room`]).
    async fn submit(&self, job: Job) {
        let sent = match self.shared.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(job)) => {
                self.shared.registry.wait_for_room(self.shared.jobs.send(job)).await.map_err(drop)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        if sent.is_err() {
            tracing::error!(handler = %self.shared.name, "handler actor is gone");
        }
    }
}

/// The bytes of events the handler's queue may hold: each queued event
/// holds its size until the handler takes it, and readers wait while the
/// budget is spent.
struct ByteBudget {
    permits: Arc<Semaphore>,
    total: u32,
}

impl ByteBudget {
    fn new(bytes: usize) -> Self {
        let total = bytes.clamp(1, u32::MAX as usize) as u32;
        ByteBudget { permits: Arc::new(Semaphore::new(total as usize)), total }
    }

    /// Takes `bytes` of the budget (all of it for an event bigger than the
    /// budget, so that it fits alone), waiting as `submit` does.
    async fn hold(&self, bytes: usize, registry: &Registry) -> OwnedSemaphorePermit {
        let bytes = (bytes.min(self.total as usize) as u32).max(1);
        match self.permits.clone().try_acquire_many_owned(bytes) {
            Ok(permit) => permit,
            Err(_) => registry
                .wait_for_room(self.permits.clone().acquire_many_owned(bytes))
                .await
                .expect("the budget is never closed"),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|cause| LoadError::Read { path: path.display().to_string(), cause })
}

fn log_version(name: &str, version: &Version, what: &str) {
    tracing::info!(
        handler = %name,
        version = version.number,
        digest = %version.digest,
        bytes = version.size,
        compile_ms = version.compile_time.as_millis() as u64,
        compile_cache = %version.compile_cache,
        events = %version.schema.event_names().join(", "),
        "{what}"
    );
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::{ByteBudget, Registry};

    #[tokio::test]
    async fn an_event_waits_for_the_queue_bytes_the_handler_has_not_taken() {
        let (budget, registry) = (ByteBudget::new(100), Registry::new(1, 1));
        let first = budget.hold(60, &registry).await;
        assert!(budget.hold(60, &registry).now_or_never().is_none(), "60 + 60 is over 100: it waits");
        drop(first);
        assert!(budget.hold(60, &registry).now_or_never().is_some(), "given back when taken");
        assert!(budget.hold(1000, &registry).now_or_never().is_some(), "bigger than the whole budget: fits alone");
    }
}
