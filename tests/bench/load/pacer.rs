//! A send schedule kept to the microsecond. tokio's timers fire on
//! millisecond ticks (a deadline is rounded up to the next tick, and the
//! driver's wait again to whole milliseconds), so requests scheduled through
//! them leave in bursts ~1 ms late, and latency counted from the schedule
//! then measured mostly the generator: 1.4 ms at the median at 10% load,
//! where one round trip takes ~70 us. A kernel timer (`timerfd`, read
//! through tokio's `AsyncFd`) wakes the generator at each slot; when it is
//! busy the expirations add up and it sends the late slots at once, each
//! still stamped with its own scheduled time.

use std::io;
use std::ops::Range;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create, timerfd_settime,
};
use tokio::io::unix::AsyncFd;

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
}

/// Wakes at the slots of a [`Schedule`].
pub struct Pacer {
    timer: AsyncFd<OwnedFd>,
    next: u64,
}

impl Pacer {
    pub fn new(schedule: Schedule) -> io::Result<Pacer> {
        let timer = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        // A zero first expiry would disarm the timer: a start already past
        // fires at once.
        let first = schedule.start.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
        let spec = Itimerspec { it_interval: timespec(schedule.period), it_value: timespec(first) };
        timerfd_settime(&timer, TimerfdTimerFlags::empty(), &spec)?;
        // `AsyncFd::new` is deprecated for types whose descriptor could change
        // under it; an `OwnedFd` cannot, and its replacement is `unsafe`,
        // which this workspace forbids.
        #[allow(deprecated)]
        let timer = AsyncFd::new(timer)?;
        Ok(Pacer { timer, next: 0 })
    }

    /// Waits until at least one slot is due and returns the slots due since
    /// the last call, in order.
    pub async fn due(&mut self) -> io::Result<Range<u64>> {
        loop {
            let mut ready = self.timer.readable().await?;
            let expired = ready.try_io(|timer| {
                let mut count = [0u8; 8];
                rustix::io::read(timer.get_ref(), &mut count)?;
                Ok(u64::from_ne_bytes(count))
            });
            if let Ok(expired) = expired {
                let slots = self.next..self.next + expired?;
                self.next = slots.end;
                return Ok(slots);
            }
        }
    }
}

fn timespec(duration: Duration) -> Timespec {
    Timespec { tv_sec: duration.as_secs() as i64, tv_nsec: duration.subsec_nanos().into() }
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

    #[tokio::test]
    async fn slots_come_due_in_order_none_early_none_left_behind() {
        let period = Duration::from_micros(250);
        let schedule = Schedule { start: Instant::now(), period };
        let mut pacer = Pacer::new(schedule).unwrap();
        let mut next = 0;
        while next < 40 {
            if next % 10 == 0 {
                // A busy generator: slots pile up meanwhile.
                let busy = Instant::now();
                while busy.elapsed() < 4 * period {}
            }
            let before = Instant::now();
            let slots = pacer.due().await.unwrap();
            let after = Instant::now();
            assert_eq!(slots.start, next, "slots are handed out in order, none skipped");
            assert!(!slots.is_empty(), "a wake-up hands out at least one slot");
            assert!(schedule.at(slots.end - 1) <= after, "a slot is never handed out before it is due");
            // The kernel's schedule starts a moment after ours (the timer is
            // armed after `start` was read): a millisecond covers that.
            assert!(
                schedule.at(slots.end) + Duration::from_millis(1) > before,
                "every slot due when the timer was read is handed out"
            );
            next = slots.end;
        }
    }
}
