//! A send schedule kept to the microsecond, by a generator that never
//! sleeps. The generator owns its core (`run.sh` pins it), so it polls the
//! clock between slots, yielding to its readers each time round. tokio's
//! timers fire on millisecond ticks, which sent requests in bursts ~1 ms
//! late; a kernel timer (`timerfd`) was punctual in itself, but between
//! slots the generator slept, and each wake-up from idle, the timer's and
//! every reply's, cost this virtual machine's core several microseconds:
//! at 72k msgs/s the generator was busy 99% of the time and its own
//! queue was in every latency it recorded (p50 ~2 ms, of which the server
//! needs ~35 us). Spinning, it sends within 15-130 us of each slot at p99
//! at 30k-55k msgs/s (still up to 2 ms at 86k, where it falls behind at
//! times). Its busy share is then 100% by construction and says nothing.

use std::ops::Range;
use std::time::{Duration, Instant};

/// Slots `start + k * period` for k = 0, 1, 2, ...: when each was due,
/// known to whoever holds a copy.
#[derive(Clone, Copy)]
pub struct Schedule {
    pub start: Instant,
    pub period: Duration,
}

impl Schedule {
    /// When slot `k` was due.
    pub fn at(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos(self.period.as_nanos() as u64 * k)
    }

    /// How many slots fall within `phase` of the start.
    pub fn slots_within(&self, phase: Duration) -> u64 {
        (phase.as_nanos() as u64).div_ceil(self.period.as_nanos() as u64)
    }

    /// How many slots are due at `now`.
    fn due_at(&self, now: Instant) -> u64 {
        match now.checked_duration_since(self.start) {
            Some(since) => (since.as_nanos() / self.period.as_nanos()) as u64 + 1,
            None => 0,
        }
    }
}

/// Hands out the slots of a [`Schedule`] as they come due.
pub struct Pacer {
    schedule: Schedule,
    next: u64,
}

impl Pacer {
    pub fn new(schedule: Schedule) -> Pacer {
        Pacer { schedule, next: 0 }
    }

    /// Waits until at least one slot is due and returns the slots due since
    /// the last call, in order. Spins: each time round it yields, so the
    /// runtime polls its sockets (without waiting) and runs the readers.
    pub async fn due(&mut self) -> Range<u64> {
        loop {
            let due = self.schedule.due_at(Instant::now());
            if due > self.next {
                let slots = self.next..due;
                self.next = due;
                return slots;
            }
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slots_within_a_phase_are_those_due_before_its_end() {
        let start = Instant::now();
        for (period_us, phase_us, slots) in [(250, 1000, 4), (250, 1001, 5), (300, 1000, 4), (1000, 1, 1)] {
            let schedule = Schedule { start, period: Duration::from_micros(period_us) };
            let phase = Duration::from_micros(phase_us);
            assert_eq!(schedule.slots_within(phase), slots, "{period_us} us slots in {phase_us} us");
            assert!(schedule.at(slots - 1) < start + phase, "the last slot is due within the phase");
            assert!(schedule.at(slots) >= start + phase, "the next is not");
        }
    }

    #[test]
    fn a_slot_is_due_from_its_time_on() {
        let start = Instant::now();
        let period = Duration::from_micros(250);
        let schedule = Schedule { start: start + period, period };
        assert_eq!(schedule.due_at(start), 0, "none before the start");
        for k in 0..4 {
            assert_eq!(schedule.due_at(schedule.at(k)), k + 1, "slot {k} at its time");
            assert_eq!(schedule.due_at(schedule.at(k + 1) - Duration::from_nanos(1)), k + 1, "not the next one yet");
        }
    }

    #[tokio::test]
    async fn slots_come_due_in_order_none_early_none_left_behind() {
        let period = Duration::from_micros(250);
        let schedule = Schedule { start: Instant::now(), period };
        let mut pacer = Pacer::new(schedule);
        let mut next = 0;
        while next < 40 {
            if next % 10 == 0 {
                // A busy generator: slots pile up meanwhile.
                let busy = Instant::now();
                while busy.elapsed() < 4 * period {}
            }
            let before = Instant::now();
            let slots = pacer.due().await;
            let after = Instant::now();
            assert_eq!(slots.start, next, "slots are handed out in order, none skipped");
            assert!(!slots.is_empty(), "a call hands out at least one slot");
            assert!(schedule.at(slots.end - 1) <= after, "a slot is never handed out before it is due");
            assert!(schedule.at(slots.end) > before, "every slot due when the call began is handed out");
            next = slots.end;
        }
    }
}
