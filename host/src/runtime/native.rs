//! Handlers written in Rust and compiled into the host: no component, no
//! sandbox, no WIT schema. They sit behind the same server, registry and
//! actor queue as a WebAssembly handler, so the difference between the two
//! is exactly what the sandbox costs (the benchmarks' baseline); an
//! application can also serve a trusted route this way.
//!
//! Events reach a native handler as decoded [`Event`]s: there is no declared
//! signature to check them against, so the handler checks its own arguments
//! and answers `Err` for what does not fit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Weak;
use std::time::Instant;

use tokio::sync::mpsc;

use super::actor::{AUTH_CHECK_FAILED, Job, QueuedEvent, rejection, reply, reply_error, reply_failed};
use super::handler::{RequestInfo, Shared};
use super::version::LoadError;
use crate::codec::{Event, Value};
use crate::registry::{ClientId, Registry};

/// A handler in Rust. `clients` is the handler's registry: rooms, contexts,
/// sending to targets, disconnecting.
pub trait NativeHandler: Send + 'static {
    /// Decides a client's auth key; `Err` is the rejection reason.
    fn on_auth(
        &mut self,
        clients: &Registry,
        client: ClientId,
        key: &str,
        request: &RequestInfo,
    ) -> Result<(), String> {
        let _ = (clients, client, key, request);
        Ok(())
    }

    /// One event. `Ok(Some(args))` replies with `args`, `Ok(None)` sends no
    /// reply, `Err(message)` replies with an `ezez-ws::error` event.
    fn on_event(&mut self, clients: &Registry, client: ClientId, event: &Event) -> Result<Option<Vec<Value>>, String>;

    /// An authenticated client is gone (still in `clients` until this returns).
    fn on_disconnect(&mut self, clients: &Registry, client: ClientId, code: u16, reason: &str) {
        let _ = (clients, client, code, reason);
    }
}

/// Feeds the jobs queued for a native handler to it, one at a time, as the
/// WebAssembly actor does. A panic answers like a trap: the event gets an
/// error reply, the log says which event, and the handler keeps serving.
pub(super) fn run(mut handler: Box<dyn NativeHandler>, shared: Weak<Shared>, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = super::actor::next_job(&mut queue) {
        let Some(shared) = shared.upgrade() else { break };
        let registry = &shared.registry;
        match job {
            Job::Auth { client, key, request, verdict } => {
                let outcome = guarded(registry, "on-auth", || handler.on_auth(registry, client, &key, &request));
                let outcome = outcome.unwrap_or_else(|| Err(AUTH_CHECK_FAILED.into()));
                let _ = verdict.send(outcome.map_err(|reason| rejection(&shared, reason)));
            }
            Job::AuthOk { .. } => {}
            Job::Event(job) => {
                let QueuedEvent { client, event, queued, .. } = *job;
                drop(queued);
                let started = Instant::now();
                let outcome = guarded(registry, &event.name, || handler.on_event(registry, client, &event));
                registry.metrics().handler_time(started.elapsed());
                match outcome {
                    Some(Ok(None)) => {}
                    Some(Ok(Some(args))) => reply(&shared, client, event, args, None),
                    Some(Err(message)) => reply_error(registry, client, event.id, message),
                    None => reply_failed(registry, client, &event),
                }
            }
            Job::Disconnect { client, code, reason, notify_guest, done } => {
                if notify_guest {
                    guarded(registry, "on-disconnect", || handler.on_disconnect(registry, client, code, &reason));
                }
                registry.remove(client);
                let _ = done.send(());
            }
            // A native handler is never raw, so no raw message is queued for it.
            Job::Raw { .. } => {}
            Job::Swap { done, .. } => {
                let _ = done.send(Err(LoadError::Native { name: shared.name.to_string() }));
            }
            Job::CatchUp { done } => {
                let _ = done.send(());
            }
        }
    }
}

/// Runs `f`, turning a panic into `None` with a log line and a trap count.
fn guarded<R>(registry: &Registry, what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => Some(result),
        Err(_) => {
            registry.metrics().trap();
            tracing::warn!(event = %what, "native handler panicked");
            None
        }
    }
}
