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

/// Slots `start + k * period` for k = 0, 1, 2, ...
pub struct Pacer {
    timer: AsyncFd<OwnedFd>,
    start: Instant,
    period: Duration,
    next: u64,
}

impl Pacer {
    pub fn new(start: Instant, period: Duration) -> io::Result<Pacer> {
        let timer = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        // A zero first expiry would disarm the timer: a start already past
        // fires at once.
        let first = start.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
        let spec = Itimerspec { it_interval: timespec(period), it_value: timespec(first) };
        timerfd_settime(&timer, TimerfdTimerFlags::empty(), &spec)?;
        // `AsyncFd::new` is deprecated for types whose descriptor could change
        // under it; an `OwnedFd` cannot, and its replacement is `unsafe`,
        // which this workspace forbids.
        #[allow(deprecated)]
        let timer = AsyncFd::new(timer)?;
        Ok(Pacer { timer, start, period, next: 0 })
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

    /// When slot `k` was due.
    pub fn scheduled(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos(self.period.as_nanos() as u64 * k)
    }
}

fn timespec(duration: Duration) -> Timespec {
    Timespec { tv_sec: duration.as_secs() as i64, tv_nsec: duration.subsec_nanos().into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_come_due_in_order_none_early_none_left_behind() {
        let period = Duration::from_micros(250);
        let mut pacer = Pacer::new(Instant::now(), period).unwrap();
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
            assert!(pacer.scheduled(slots.end - 1) <= after, "a slot is never handed out before it is due");
            // The kernel's schedule starts a moment after ours (the timer is
            // armed after `start` was read): a millisecond covers that.
            assert!(
                pacer.scheduled(slots.end) + Duration::from_millis(1) > before,
                "every slot due when the timer was read is handed out"
            );
            next = slots.end;
        }
    }
}
