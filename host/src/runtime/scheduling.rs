//! How the handler's thread asks the OS to schedule it.
//!
//! Every event crosses from a connection's tokio task to the handler's
//! thread and back. When both share a core (one core, or more servers than
//! cores), an ordinary thread woken by the I/O thread preempts it at once:
//! one event in, one context switch, the guest called, another switch back,
//! per message. As `SCHED_BATCH` the handler's thread is not run ahead of
//! the thread that woke it, so the I/O thread finishes reading whatever is
//! ready, then the handler drains its queue in one go. Measured on one core
//! with 100 connections (BENCHMARKS.md): half the server's CPU time per
//! echo. An idle core, or an I/O thread with nothing left to read, still
//! runs the handler at once, so a lone client's latency does not change.
//! The price: woken on a core that other busy threads share, the handler
//! waits for their time slice instead of cutting in. The tokio threads stay
//! ordinary: batching them too measured slower.

/// Puts the calling thread in the batch class at the default niceness.
/// Best effort: scheduling is an optimisation, so a refusal is logged and
/// the thread runs as it is.
pub fn batch_this_thread() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        let niceness = ThreadPriority::Os(ThreadPriorityOsValue::default());
        if let Err(error) = set_thread_priority_and_policy(thread_native_id(), niceness, batch) {
            tracing::debug!("the handler thread stays in the normal scheduling class: {error:?}");
        }
    }
}
