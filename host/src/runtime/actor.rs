//! The thread that owns a handler's one instance and feeds it one job at a
//! time, in the order they were queued. A swap is a job too: events queued
//! before it run on the old version, events after it on the new one, and
//! nothing is lost, duplicated or reordered.
//!
//! Its own thread keeps a slow or hostile handler from stalling any
//! connection's I/O. The price is the crossing: each event wakes this thread
//! and each reply wakes the I/O thread. Under load, batches share those
//! wake-ups; at moderate rates every event pays them, about a quarter of
//! its CPU time (tests/bench/HISTORY.md, "Echo at moderate loads").

use std::sync::{Arc, Weak};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use wasmtime::component::InstancePre;

use super::bindings::{RawMessage, Request};
use super::epoch::Ticker;
use super::handler::{RequestInfo, Shared};
use super::host::HostState;
use super::instance::{Live, backtrace, one_line};
use super::metrics::EventCounters;
use super::schema::Checked;
use super::version::{Candidate, LoadError, Version};
use crate::codec::{ERROR, Event, Frame, OutgoingEvent, Value};
use crate::config::Config;
use crate::registry::{ClientId, Place, Registry};

/// What a queued event holds until the actor takes it (and drops it): its
/// bytes of the queue's budget and one of its client's places.
#[derive(Debug)]
pub struct Queued {
    _bytes: OwnedSemaphorePermit,
    _place: Place,
}

impl Queued {
    pub fn new(bytes: OwnedSemaphorePermit, place: Place) -> Queued {
        Queued { _bytes: bytes, _place: place }
    }
}

/// Work for the actor.
pub enum Job {
    Auth {
        client: ClientId,
        key: String,
        /// Boxed, as the event is: one auth a connection.
        request: Box<RequestInfo>,
        verdict: oneshot::Sender<Result<(), String>>,
    },
    AuthOk {
        client: ClientId,
    },
    /// Boxed: a job is moved about ten times on its way from the reader to
    /// the actor, and one that holds an event whole (152 bytes) took a
    /// `memcpy` call each time, ~300 instructions an echo; a box moves in a
    /// register, and the job's largest variant is then under half that size.
    Event(Box<QueuedEvent>),
    Disconnect {
        client: ClientId,
        code: u16,
        reason: String,
        notify_guest: bool,
        done: oneshot::Sender<()>,
    },
    /// A whole message for a raw handler.
    Raw {
        client: ClientId,
        frame: Frame,
        queued: Queued,
    },
    Swap {
        candidate: Box<Candidate>,
        done: oneshot::Sender<Result<Arc<Version>, LoadError>>,
    },
    /// Answered once every job queued before it is done.
    CatchUp {
        done: oneshot::Sender<()>,
    },
}

/// An event for the handler. Its arguments were checked (moved out of
/// `event`) by `version`, unless the handler is native and checks its own;
/// a swap in between means checking them again.
pub struct QueuedEvent {
    pub client: ClientId,
    pub event: Event,
    pub checked: Option<Checked>,
    pub version: Arc<Version>,
    /// Given back when the job is taken.
    pub queued: Queued,
}

pub struct Actor {
    pub shared: Weak<Shared>,
    pub pre: InstancePre<HostState>,
    /// The engine's epoch ticker, for the instances `pre` starts.
    pub ticker: Ticker,
    pub live: Option<Live>,
    pub version: Arc<Version>,
    pub config: Config,
    pub name: Arc<str>,
}

impl Actor {
    pub fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        while let Some(job) = next_job(&mut queue) {
            let Some(shared) = self.shared.upgrade() else { break };
            self.handle(&shared, job);
        }
        tracing::debug!(handler = %self.name, "handler stopped");
    }

    fn handle(&mut self, shared: &Shared, job: Job) {
        let registry = &shared.registry;
        match job {
            Job::Auth { client, key, request, verdict } => {
                let request = to_wit_request(&request);
                let lifecycle = self.version.schema.lifecycle.clone();
                let outcome = self
                    .call("on-auth", |live| live.on_auth(&lifecycle, client, key, request))
                    .unwrap_or_else(|| Err(AUTH_CHECK_FAILED.into()));
                let _ = verdict.send(outcome.map_err(|reason| rejection(shared, reason)));
            }
            Job::AuthOk { client } => {
                let lifecycle = self.version.schema.lifecycle.clone();
                self.call("on-auth-ok", |live| live.on_auth_ok(&lifecycle, client));
            }
            Job::Event(job) => {
                let QueuedEvent { client, event, checked, version, queued } = *job;
                drop(queued);
                match checked {
                    Some(checked) => self.event(shared, client, event, checked, version),
                    // Not made: a WebAssembly handler's events are all checked.
                    None => reply_failed(registry, client, &event),
                }
            }
            Job::Disconnect { client, code, reason, notify_guest, done } => {
                if notify_guest {
                    let lifecycle = self.version.schema.lifecycle.clone();
                    self.call("on-disconnect", |live| live.on_disconnect(&lifecycle, client, code, reason));
                }
                registry.remove(client);
                let _ = done.send(());
            }
            Job::Raw { client, frame, queued } => {
                drop(queued);
                let lifecycle = self.version.schema.lifecycle.clone();
                let message = match frame {
                    Frame::Text(text) => RawMessage::Text(text),
                    Frame::Binary(bytes) => RawMessage::Binary(bytes.to_vec()),
                };
                self.call("raw.on-message", |live| live.on_message(&lifecycle, client, message));
            }
            Job::Swap { candidate, done } => {
                let outcome = self.swap(*candidate);
                if let Ok(version) = &outcome {
                    shared.current.send_replace(version.clone());
                    registry.metrics().swap();
                }
                let _ = done.send(outcome);
            }
            Job::CatchUp { done } => {
                let _ = done.send(());
            }
        }
    }

    fn event(&mut self, shared: &Shared, client: ClientId, mut event: Event, checked: Checked, by: Arc<Version>) {
        let registry = &shared.registry;
        let version = self.version.clone();
        let checked = if by.number == version.number {
            checked
        } else {
            // The handler was swapped after this event was checked.
            event.args = by.schema.wire_args(&checked);
            match version.schema.convert(&mut event) {
                Ok(checked) => checked,
                Err(message) => return reply_error(registry, client, event.id, message),
            }
        };
        let declared = version.schema.event(checked.event);
        let started = std::time::Instant::now();
        let outcome = self.call(&declared.name.wit, |live| live.call_event(declared, client, checked.args));
        registry.metrics().handler_time(started.elapsed());
        match outcome {
            Some(reply_args) if reply_args.is_empty() => {}
            Some(reply_args) => reply(shared, client, event, reply_args, Some(&declared.counters)),
            None => reply_failed(registry, client, &event),
        }
    }

    /// Installs a prepared version, handing the state over when both
    /// versions can. If the new version refuses the state, the old one stays.
    fn swap(&mut self, candidate: Candidate) -> Result<Arc<Version>, LoadError> {
        let Candidate { version, pre, mut live } = candidate;
        let version = Arc::new(Version { number: self.version.number + 1, ..unwrap_version(version) });
        let old = self.version.schema.lifecycle.clone();
        let new = version.schema.lifecycle.clone();
        if old.save_state.is_some() && new.restore_state.is_some() {
            if let Some(state) = self.call("state.save", |live| live.save_state(&old)) {
                live.restore_state(&new, state).map_err(|cause| LoadError::Handover {
                    name: self.name.to_string(),
                    reason: format!("restore trapped: {}", one_line(&cause)),
                })?;
            } else {
                tracing::warn!(handler = %self.name, "the old version could not save its state; the new one starts empty");
            }
        }
        let previous = std::mem::replace(&mut self.version, version.clone());
        self.pre = pre;
        self.live = Some(live);
        tracing::info!(
            handler = %self.name,
            from = previous.number,
            to = version.number,
            digest = %version.digest,
            compile_ms = version.compile_time.as_millis() as u64,
            compile_cache = %version.compile_cache,
            handed_over = old.save_state.is_some() && new.restore_state.is_some(),
            "swapped"
        );
        Ok(version)
    }

    /// Runs `f` on the instance, starting a fresh one if the last trapped.
    /// A failure is logged with the handler and what it was doing, and the
    /// instance is replaced; `None` tells the caller it failed.
    fn call<R>(&mut self, what: &str, f: impl FnOnce(&mut Live) -> wasmtime::Result<R>) -> Option<R> {
        if self.live.is_none() {
            self.restart();
        }
        let live = self.live.as_mut()?;
        match f(live) {
            Ok(result) => Some(result),
            Err(error) => {
                if let Some(shared) = self.shared.upgrade() {
                    shared.registry.metrics().trap();
                }
                tracing::warn!(
                    handler = %self.name,
                    event = %what,
                    "handler failed, replacing its instance: {}",
                    one_line(&error)
                );
                if let Some(backtrace) = backtrace(&error) {
                    tracing::debug!(handler = %self.name, event = %what, "where it failed: {backtrace}");
                }
                self.live = None;
                self.restart();
                None
            }
        }
    }

    fn restart(&mut self) {
        let Some(shared) = self.shared.upgrade() else { return };
        match Live::start(&self.pre, &self.ticker, self.name.clone(), shared.registry.clone(), &self.config) {
            Ok(live) => self.live = Some(live),
            Err(error) => tracing::error!(handler = %self.name, "cannot start a fresh instance: {}", one_line(&error)),
        }
    }
}

/// The next job, waiting for one if need be; `None` once every sender is
/// gone. Under load a job is usually waiting: it is then taken without
/// `blocking_recv`'s set-up for parking the thread (~1% of an echo's
/// instructions).
pub(super) fn next_job(queue: &mut mpsc::Receiver<Job>) -> Option<Job> {
    queue.try_recv().ok().or_else(|| queue.blocking_recv())
}

/// A candidate's version is held by the candidate alone until installed.
fn unwrap_version(version: Arc<Version>) -> Version {
    Arc::try_unwrap(version).unwrap_or_else(|_| unreachable!("a candidate's version is not shared"))
}

/// The rejection reason when the auth decision itself failed (a trap, a panic).
pub const AUTH_CHECK_FAILED: &str = "Auth check failed";

/// Replies to `event` with `args`, counted in the declared event's
/// `counters` if it has them, else by name. A reply is held to the max
/// payload as every outgoing event is: one over it is not sent, the client
/// gets an error instead. The call itself went well, so the instance stays.
pub(super) fn reply(
    shared: &Shared,
    client: ClientId,
    event: Event,
    args: Vec<Value>,
    counters: Option<&EventCounters>,
) {
    let registry = &shared.registry;
    let reply = OutgoingEvent::new(event.name, Some(event.id), args);
    if !fits_max_payload(shared, "reply", reply.name(), reply.size_hint()) {
        let max = shared.config.max_payload_bytes;
        let message = format!("{}: the reply is over the max payload of {max} bytes", reply.name());
        return reply_error(registry, client, event.id, message);
    }
    let reply = Arc::new(reply);
    match counters {
        Some(counters) => registry.send_counted(client, reply, counters),
        None => registry.send_to(client, reply),
    }
}

/// A rejection reason as the client will get it: one over the max payload
/// is replaced by [`AUTH_CHECK_FAILED`], as a reply over it is refused.
pub(super) fn rejection(shared: &Shared, reason: String) -> String {
    if fits_max_payload(shared, "auth rejection", "on-auth", reason.len()) { reason } else { AUTH_CHECK_FAILED.into() }
}

/// Whether `size` bytes of what the handler answered to `event` fit the max
/// payload. What does not is logged and counted as a handler fault.
fn fits_max_payload(shared: &Shared, what: &str, event: &str, size: usize) -> bool {
    let max = shared.config.max_payload_bytes;
    if size <= max {
        return true;
    }
    shared.registry.metrics().trap();
    tracing::warn!(
        handler = %shared.name,
        %event,
        "{what} refused: about {size} bytes, over the max payload of {max} bytes (raise it with `--max-payload`)"
    );
    false
}

/// Tells the client the handler failed on its event.
pub fn reply_failed(registry: &Registry, client: ClientId, event: &Event) {
    reply_error(registry, client, event.id, format!("{}: the handler failed on this event", event.name));
}

pub fn reply_error(registry: &Registry, client: ClientId, event_id: u64, message: String) {
    registry.send_to(client, Arc::new(OutgoingEvent::new(ERROR, Some(event_id), vec![Value::String(message)])));
}

fn to_wit_request(request: &RequestInfo) -> Request {
    Request {
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        remote_addr: request.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
    }
}
