//! The epoch ticker: what makes a call's deadline fire.
//!
//! wasmtime stops guest code once the engine's epoch passes the store's
//! deadline, and the epoch moves only when something advances it. A thread
//! does, every [`TICK`], while guest code may run. With no call in flight for
//! [`IDLE_TICKS`] ticks it sleeps until the next call begins: ticking without
//! a pause woke an idle server 200 times a second, its only activity (10-17 us
//! of CPU a wake-up on a 2-core VM). A call pays three atomic operations for
//! it, and after an idle second one wake-up of this thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use wasmtime::{Engine, EngineWeak};

/// How often the epoch advances while calls run; deadlines are counted in these.
pub const TICK: Duration = Duration::from_millis(5);

/// Ticks without a call in flight before the ticker sleeps: a second.
const IDLE_TICKS: u32 = 200;

/// How long a sleeping ticker waits before checking whether its engine is gone.
const ENGINE_CHECK: Duration = Duration::from_secs(1);

/// A handle on the thread that advances one engine's epoch. The thread ends
/// once the engine is dropped.
#[derive(Clone)]
pub struct Ticker {
    shared: Arc<Shared>,
}

struct Shared {
    /// Calls running guest code now, over every store of the engine.
    in_flight: AtomicUsize,
    /// Set by the ticker before it checks `in_flight` one last time and waits.
    asleep: AtomicBool,
    /// Held while the ticker decides to wait, so a wake-up cannot slip past it.
    lock: Mutex<()>,
    wake: Condvar,
}

/// A call in flight, from [`Ticker::running`] until dropped.
#[must_use = "the epoch advances only while this is held"]
pub struct Running<'a> {
    shared: &'a Shared,
}

impl Ticker {
    /// Starts the thread that advances `engine`'s epoch.
    pub fn start(engine: &Engine) -> std::io::Result<Ticker> {
        Ticker::start_with(engine.weak(), IDLE_TICKS, ENGINE_CHECK)
    }

    fn start_with(engine: EngineWeak, idle_ticks: u32, engine_check: Duration) -> std::io::Result<Ticker> {
        let shared = Arc::new(Shared {
            in_flight: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let ticking = shared.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || ticking.run(&engine, idle_ticks, engine_check))?;
        Ok(Ticker { shared })
    }

    /// Marks a call as running guest code until the guard is dropped; wakes
    /// the ticker if it sleeps.
    pub fn running(&self) -> Running<'_> {
        let shared = &self.shared;
        // Paired with the ticker's store to `asleep` then load of `in_flight`:
        // one of the two sides sees the other's write.
        shared.in_flight.fetch_add(1, SeqCst);
        if shared.asleep.load(SeqCst) {
            let _held = shared.lock.lock().unwrap_or_else(PoisonError::into_inner);
            shared.wake.notify_one();
        }
        Running { shared }
    }

    #[cfg(test)]
    fn is_asleep(&self) -> bool {
        self.shared.asleep.load(SeqCst)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, SeqCst);
    }
}

impl Shared {
    fn run(&self, weak: &EngineWeak, idle_ticks: u32, engine_check: Duration) {
        let mut idle = 0;
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(TICK);
            idle = if self.in_flight.load(SeqCst) == 0 { idle + 1 } else { 0 };
            if idle >= idle_ticks {
                self.sleep(weak, engine_check);
                idle = 0;
            }
        }
    }

    /// Waits until a call is in flight, checking now and then that the
    /// engine is still there.
    fn sleep(&self, weak: &EngineWeak, engine_check: Duration) {
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.asleep.store(true, SeqCst);
        while self.in_flight.load(SeqCst) == 0 && weak.upgrade().is_some() {
            held = self.wake.wait_timeout(held, engine_check).unwrap_or_else(PoisonError::into_inner).0;
        }
        self.asleep.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use wasmtime::{Config, Instance, Module, Store, Trap};

    use super::*;

    fn wait_until_asleep(ticker: &Ticker) {
        let started = std::time::Instant::now();
        while !ticker.is_asleep() {
            assert!(started.elapsed() < Duration::from_secs(30), "the ticker never slept");
            std::thread::yield_now();
        }
    }

    /// A sleeping ticker wakes for a call that starts then: a guest that
    /// spins forever is still stopped at its deadline. (The ticker's own
    /// check of its engine is put off past the test's patience.)
    #[test]
    fn a_call_begun_while_the_ticker_sleeps_still_meets_its_deadline() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        let ticker = Ticker::start_with(engine.weak(), 2, Duration::from_secs(3600)).unwrap();
        wait_until_asleep(&ticker);
        let spin = wat::parse_str(r#"(module (func (export "spin") (loop (br 0))))"#).unwrap();
        let module = Module::new(&engine, spin).unwrap();
        let (done, stopped) = mpsc::channel();
        std::thread::spawn(move || {
            let mut store = Store::new(&engine, ());
            store.set_epoch_deadline(2);
            let instance = Instance::new(&mut store, &module, &[]).unwrap();
            let spin = instance.get_typed_func::<(), ()>(&mut store, "spin").unwrap();
            let _running = ticker.running();
            let _ = done.send(spin.call(&mut store, ()).unwrap_err().downcast::<Trap>());
        });
        let trap = stopped.recv_timeout(Duration::from_secs(30)).expect("the spinning call was never stopped");
        assert_eq!(trap.unwrap(), Trap::Interrupt);
    }

    /// The thread ends with its engine, even asleep.
    #[test]
    fn the_ticker_ends_with_its_engine() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        let ticker = Ticker::start_with(engine.weak(), 1, Duration::from_millis(10)).unwrap();
        wait_until_asleep(&ticker);
        drop(engine);
        let ended = std::time::Instant::now();
        // The thread holds the last other reference to the shared state.
        while Arc::strong_count(&ticker.shared) > 1 {
            assert!(ended.elapsed() < Duration::from_secs(30), "the ticker outlived its engine");
            std::thread::yield_now();
        }
    }
}
