//! What one handler counts: events in and out by name, refused frames by
//! reason, time spent in the guest per event, traps, swaps and the memory
//! of its instance, and its cluster traffic. Rendered as Prometheus text by
//! `server::metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the handler-time histogram, in seconds.
pub const TIME_BUCKETS: [f64; 12] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0];

/// Why a frame or event did not reach the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// Not a protocol message (closed with 1002).
    Malformed,
    /// Over the max payload (closed with 1009).
    TooBig,
    /// A WebSocket protocol violation or invalid UTF-8 (closed).
    Protocol,
    /// Did not fit the declared types, unknown or reserved (error reply).
    DoesNotFit,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::TooBig => "too_big",
            Refusal::Protocol => "protocol",
            Refusal::DoesNotFit => "does_not_fit",
        }
    }
}

/// Counters of one handler; shared by its connections and its actor.
#[derive(Debug, Default)]
pub struct HandlerMetrics {
    events_in: ByName,
    events_out: ByName,
    refused: Mutex<BTreeMap<Refusal, u64>>,
    disconnects: Mutex<BTreeMap<u16, u64>>,
    time_buckets: [AtomicU64; TIME_BUCKETS.len()],
    time_count: AtomicU64,
    time_sum_nanos: AtomicU64,
    traps: AtomicU64,
    swaps: AtomicU64,
    memory_bytes: AtomicU64,
    /// Counted by `crate::cluster` once the handler joins one.
    pub cluster: ClusterCounters,
}

/// Counters by event name. Each is shared, so that a declared event's are
/// found once, at load ([`HandlerMetrics::counters`]).
type ByName = Mutex<BTreeMap<String, Arc<AtomicU64>>>;

/// One event name's counters, in and out, as `/metrics` shows them. A
/// handler's schema holds those of each declared event: counting one is an
/// atomic add, where finding it by name under the lock cost ~90
/// instructions each way (tests/bench/HISTORY.md, "Declared events counted
/// without a lookup"). A default one counts for nobody.
#[derive(Debug, Clone, Default)]
pub struct EventCounters {
    arrived: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
}

impl EventCounters {
    /// An event of this name reached the handler's queue.
    pub fn arrived(&self) {
        self.arrived.fetch_add(1, Ordering::Relaxed);
    }

    /// `recipients` clients were sent an event of this name.
    pub fn sent(&self, recipients: usize) {
        self.sent.fetch_add(recipients as u64, Ordering::Relaxed);
    }
}

/// A handler's traffic with the other nodes of its cluster.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// This node's number; 0 until the handler joins a cluster (numbers
    /// start at 1).
    pub node: AtomicU64,
    /// Whether the subscription to the other nodes is up.
    pub connected: AtomicBool,
    /// Other nodes heard from lately.
    pub nodes: AtomicU64,
    pub published: AtomicU64,
    pub received: AtomicU64,
    /// Notes for other nodes that could not be published (Redis down, or the
    /// queue to it full): their deliveries and changes never left.
    pub dropped: AtomicU64,
    /// Notes other nodes published that never arrived (gaps in their
    /// sequence numbers, e.g. while this node's subscription was down).
    pub missed: AtomicU64,
}

/// [`ClusterCounters`] at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSnapshot {
    pub node: u64,
    pub connected: bool,
    pub nodes: u64,
    pub published: u64,
    pub received: u64,
    pub dropped: u64,
    pub missed: u64,
}

impl ClusterCounters {
    pub fn add(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Option<ClusterSnapshot> {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let node = read(&self.node);
        (node > 0).then(|| ClusterSnapshot {
            node,
            connected: self.connected.load(Ordering::Relaxed),
            nodes: read(&self.nodes),
            published: read(&self.published),
            received: read(&self.received),
            dropped: read(&self.dropped),
            missed: read(&self.missed),
        })
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub events_in: BTreeMap<String, u64>,
    pub events_out: BTreeMap<String, u64>,
    pub refused: BTreeMap<&'static str, u64>,
    /// Connections closed, by close code (see [`HandlerMetrics::disconnected`]).
    pub disconnects: BTreeMap<u16, u64>,
    /// Cumulative counts per bucket of [`TIME_BUCKETS`].
    pub time_buckets: Vec<u64>,
    pub time_count: u64,
    pub time_sum: Duration,
    pub traps: u64,
    pub swaps: u64,
    pub memory_bytes: u64,
    /// `None` outside a cluster.
    pub cluster: Option<ClusterSnapshot>,
}

impl HandlerMetrics {
    /// An event reached the handler's queue.
    pub fn event_in(&self, name: &str) {
        counting(&self.events_in, name, |count| count.fetch_add(1, Ordering::Relaxed));
    }

    /// `recipients` clients were sent an event (replies and errors included).
    pub fn event_out(&self, name: &str, recipients: usize) {
        if recipients > 0 {
            counting(&self.events_out, name, |count| count.fetch_add(recipients as u64, Ordering::Relaxed));
        }
    }

    /// The counters of events named `name`, to count them without a lookup.
    pub fn counters(&self, name: &str) -> EventCounters {
        EventCounters {
            arrived: counting(&self.events_in, name, Arc::clone),
            sent: counting(&self.events_out, name, Arc::clone),
        }
    }

    /// A connection closed with `code`: the peer's close code, else the
    /// server's (1001 for silence or shutdown, 1008 for a slow reader...),
    /// else 1006 (dropped without a close frame).
    pub fn disconnected(&self, code: u16) {
        *self.disconnects.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
    }

    pub fn refused(&self, why: Refusal) {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()).entry(why).or_default() += 1;
    }

    /// One call into the guest took `elapsed`. Only the first bucket it
    /// fits is counted here (one atomic add per call, not one per bucket);
    /// [`Self::snapshot`] adds them up into Prometheus' cumulative buckets.
    pub fn handler_time(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = TIME_BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.time_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.time_count.fetch_add(1, Ordering::Relaxed);
        self.time_sum_nanos.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn trap(&self) {
        self.traps.fetch_add(1, Ordering::Relaxed);
    }

    pub fn swap(&self) {
        self.swaps.fetch_add(1, Ordering::Relaxed);
    }

    /// The instance's linear memories and tables grew (or a fresh one
    /// started) to `bytes` in all.
    pub fn memory(&self, bytes: usize) {
        self.memory_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            events_in: counted(&self.events_in),
            events_out: counted(&self.events_out),
            refused: self
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(why, count)| (why.label(), *count))
                .collect(),
            disconnects: self.disconnects.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            time_buckets: self
                .time_buckets
                .iter()
                .scan(0, |below, bucket| {
                    *below += bucket.load(Ordering::Relaxed);
                    Some(*below)
                })
                .collect(),
            time_count: self.time_count.load(Ordering::Relaxed),
            time_sum: Duration::from_nanos(self.time_sum_nanos.load(Ordering::Relaxed)),
            traps: self.traps.load(Ordering::Relaxed),
            swaps: self.swaps.load(Ordering::Relaxed),
            memory_bytes: self.memory_bytes.load(Ordering::Relaxed),
            cluster: self.cluster.snapshot(),
        }
    }
}

/// Most event names counted one by one; later names count as [`OTHER_EVENTS`].
/// A WebAssembly handler's names are its declared ones, but a native handler
/// hears whatever names clients send: unbounded, they grew the server's memory
/// and the `/metrics` page with every new name.
pub const MAX_EVENT_NAMES: usize = 1024;
/// Longest name counted as itself, in bytes; a longer one counts as [`OTHER_EVENTS`].
pub const MAX_EVENT_NAME_BYTES: usize = 128;
/// The name events are counted under past [`MAX_EVENT_NAMES`] or [`MAX_EVENT_NAME_BYTES`].
pub const OTHER_EVENTS: &str = "(other)";

/// `f` on the counter of `name` in `map`, made at its first use.
fn counting<R>(map: &ByName, name: &str, f: impl FnOnce(&Arc<AtomicU64>) -> R) -> R {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(count) = map.get(name) {
        return f(count);
    }
    let name = if map.len() < MAX_EVENT_NAMES && name.len() <= MAX_EVENT_NAME_BYTES { name } else { OTHER_EVENTS };
    // Looked up, not taken through `entry`: that would allocate the key for
    // every event past the bound.
    match map.get(name) {
        Some(count) => f(count),
        None => f(map.entry(name.to_owned()).or_default()),
    }
}

/// The names counted so far and their counts; a counter made at load and
/// not counted yet is left out.
fn counted(map: &ByName) -> BTreeMap<String, u64> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.iter()
        .map(|(name, count)| (name.clone(), count.load(Ordering::Relaxed)))
        .filter(|(_, count)| *count > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_past_the_bound_count_together() {
        let metrics = HandlerMetrics::default();
        for n in 0..MAX_EVENT_NAMES + 10 {
            metrics.event_in(&format!("event-{n}"));
        }
        metrics.event_in(&"x".repeat(MAX_EVENT_NAME_BYTES + 1));
        metrics.event_in("event-0");
        metrics.event_out("a-name-never-seen", 3);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.events_in.len(), MAX_EVENT_NAMES + 1, "the first names, then one for the rest");
        assert_eq!(snapshot.events_in["event-0"], 2, "a name counted before keeps counting");
        assert_eq!(snapshot.events_in[OTHER_EVENTS], 11, "ten names past the bound and one too long");
        assert_eq!(snapshot.events_out["a-name-never-seen"], 3, "each family has its own bound");
    }

    #[test]
    fn counters_found_once_count_with_their_name() {
        let metrics = HandlerMetrics::default();
        let echo = metrics.counters("echo");
        assert!(metrics.snapshot().events_in.is_empty(), "found, not counted yet: not shown");
        echo.arrived();
        metrics.event_in("echo");
        echo.sent(3);
        let snapshot = metrics.snapshot();
        assert_eq!((snapshot.events_in["echo"], snapshot.events_out["echo"]), (2, 3));
        EventCounters::default().arrived();
        assert_eq!(metrics.snapshot().events_in.len(), 1, "a default one counts for nobody");
    }

    #[test]
    fn handler_times_read_as_cumulative_buckets() {
        let metrics = HandlerMetrics::default();
        for micros in [30, 50, 200, 3_000, 2_000_000] {
            metrics.handler_time(Duration::from_micros(micros));
        }
        let snapshot = metrics.snapshot();
        // Bounds: 50 us, 100 us, 250 us, 500 us, 1 ms, 2.5 ms, 5 ms, ... 1 s;
        // 2 s is past the last one and counts in +Inf (`time_count`) only.
        assert_eq!(snapshot.time_buckets, [2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4]);
        assert_eq!(snapshot.time_count, 5);
        assert_eq!(snapshot.time_sum, Duration::from_micros(2_003_280));
    }
}
