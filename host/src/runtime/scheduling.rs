//! How the handler's thread asks the OS to schedule it.
//!
//! Every event crosses from a connection's tokio task to the handler's
//! thread and back. When both share a core (one core, or more servers than
//! cores), an ordinary thread woken by the I/O thread preempts it at once:
//! one event in, one context switch, the guest called, another switch back,
//! per message. As `SCHED_BATCH` the handler's thread is not run ahead of
//! the thread that woke it, so the I/O thread finishes reading whatever is
//! ready, then the handler drains its queue in one go. Measured on one core
//! with 100 connections (tests/bench/HISTORY.md): half the server's CPU time per
//! echo. An idle core, or an I/O thread with nothing left to read, still
//! runs the handler at once, so a lone client's latency does not change.
//! The price: woken on a core that other busy threads share, the handler
//! waits for their time slice instead of cutting in. The tokio threads stay
//! ordinary: batching them too measured slower.
//!
//! The thread also takes niceness 5. At the default niceness, one run in
//! three of 1000 connections on one core fell into a rhythm the scheduler
//! keeps: the I/O thread switched out involuntarily 17k-24k times a second,
//! the handler's thread parked after nearly every event, and throughput
//! halved (tests/bench/HISTORY.md, "Why the 1000 x 20 B row swings"). At niceness 5
//! (weight 335 against an ordinary thread's 1024) the slow seconds fell from
//! 6 in 28 to 2 in 24, each over by the next second. The handler still gets
//! all of an idle core, and when its queue is full the readers wait, which
//! leaves it the core.

/// The handler's thread's niceness in the batch class.
const HANDLER_NICENESS: i32 = 5;

/// Puts the calling thread in the batch class at [`HANDLER_NICENESS`]. Best
/// effort: scheduling is an optimisation, so a refusal is logged and the
/// thread runs as it is. A thread started with a niceness other than the
/// default is left alone: whoever set it chose the priority.
pub fn batch_this_thread(handler: &str) {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        match niceness() {
            Some(0) => {}
            Some(nice) => {
                return tracing::info!(
                    handler = %handler,
                    "the handler's thread keeps niceness {nice} and the normal scheduling class \
                     (the batch class is set at the default niceness only)"
                );
            }
            None => {
                return tracing::info!(handler = %handler, "cannot read the handler's thread niceness: it keeps its scheduling");
            }
        }
        let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        let default_niceness = ThreadPriority::Os(ThreadPriorityOsValue::default());
        if let Err(error) = set_thread_priority_and_policy(thread_native_id(), default_niceness, batch) {
            return tracing::info!(handler = %handler, "the handler's thread stays in the normal scheduling class: {error:?}");
        }
        // Linux gives each thread its own niceness; raising it needs no privilege.
        if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), HANDLER_NICENESS) {
            tracing::info!(handler = %handler, "the handler's thread keeps niceness 0: {error}");
        }
    }
}

/// The calling thread's niceness.
#[cfg(target_os = "linux")]
fn niceness() -> Option<i32> {
    thread_stat_field(19)
}

/// Field `n` of the calling thread's `/proc` stat line, numbered as in
/// proc(5); the fields are counted after the name in parentheses (field 2),
/// which may hold spaces.
#[cfg(target_os = "linux")]
fn thread_stat_field(n: usize) -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(n - 3)?.parse().ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };

    use super::{HANDLER_NICENESS, batch_this_thread, niceness, thread_stat_field};

    const SCHED_OTHER: i32 = 0;
    const SCHED_BATCH: i32 = 3;

    /// The calling thread's scheduling policy.
    fn policy() -> i32 {
        thread_stat_field(41).unwrap()
    }

    #[test]
    fn a_thread_at_the_default_niceness_becomes_a_niced_batch_thread() {
        let (policy, nice) = std::thread::spawn(|| {
            batch_this_thread("test");
            (policy(), niceness())
        })
        .join()
        .unwrap();
        assert_eq!((policy, nice), (SCHED_BATCH, Some(HANDLER_NICENESS)));
        assert_eq!(niceness(), Some(0), "the other threads keep theirs");
    }

    #[test]
    fn a_niced_thread_keeps_its_class_and_niceness() {
        let (policy, nice) = std::thread::spawn(|| {
            // Lower priority than the default: allowed without privileges.
            let lower = ThreadPriority::Crossplatform(ThreadPriorityValue::try_from(25u8).unwrap());
            let normal = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
            set_thread_priority_and_policy(thread_native_id(), lower, normal).unwrap();
            let niced = niceness();
            assert!(matches!(niced, Some(n) if n > 0), "niced to {niced:?}");
            batch_this_thread("test");
            assert_eq!(niceness(), niced);
            (policy(), niced)
        })
        .join()
        .unwrap();
        assert_eq!(policy, SCHED_OTHER, "niceness {nice:?}");
    }
}
