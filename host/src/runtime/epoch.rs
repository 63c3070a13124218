//! The epoch ticker: what makes a call's deadline fire.
//!
//! wasmtime stops guest code once the engine's epoch passes the store's
//! deadline, and the epoch moves only when something advances it. A thread
//! does, every [`TICK`], while guest code may run. When [`IDLE_TICKS`] ticks
//! in a row find no call in flight, it sleeps until the next call begins
//! (light traffic may wake it about once a second that way): ticking without
//! a pause woke an idle server 200 times a second, its only activity (10-17 us
//! of CPU a wake-up on a 2-core VM). A call pays three atomic operations for
//! it, and one that finds the ticker asleep a wake-up of this thread. The
//! thread ends when the last handle on it is dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances while calls run; deadlines are counted in these.
pub const TICK: Duration = Duration::from_millis(5);

/// Ticks in a row that find no call in flight before the ticker sleeps: a second.
const IDLE_TICKS: u32 = 200;

/// A handle on the thread that advances one engine's epoch.
#[derive(Clone)]
pub struct Ticker {
    handle: Arc<Handle>,
}

/// Dropped with the last [`Ticker`]: tells the thread to end.
struct Handle(Arc<Shared>);

struct Shared {
    /// Calls running guest code now, over every store of the engine.
    in_flight: AtomicUsize,
    /// Set by the ticker before it checks `in_flight` one last time and waits.
    asleep: AtomicBool,
    /// No handle is left: the thread ends.
    closed: AtomicBool,
    /// Held while the ticker decides to wait, and to wake it, so a wake-up
    /// cannot slip past it.
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
        Ticker::start_with(engine.clone(), IDLE_TICKS)
    }

    fn start_with(engine: Engine, idle_ticks: u32) -> std::io::Result<Ticker> {
        let shared = Arc::new(Shared {
            in_flight: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let ticking = shared.clone();
        std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || ticking.run(&engine, idle_ticks))?;
        Ok(Ticker { handle: Arc::new(Handle(shared)) })
    }

    /// Marks a call as running guest code until the guard is dropped; wakes
    /// the ticker if it sleeps.
    pub fn running(&self) -> Running<'_> {
        let shared = &*self.handle.0;
        // Paired with the ticker's store to `asleep` then load of `in_flight`:
        // one of the two sides sees the other's write.
        shared.in_flight.fetch_add(1, SeqCst);
        if shared.asleep.load(SeqCst) {
            shared.wake_up();
        }
        Running { shared }
    }

    #[cfg(test)]
    fn is_asleep(&self) -> bool {
        self.handle.0.asleep.load(SeqCst)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, SeqCst);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.closed.store(true, SeqCst);
        self.0.wake_up();
    }
}

impl Shared {
    fn run(&self, engine: &Engine, idle_ticks: u32) {
        let mut idle = 0;
        while !self.closed.load(SeqCst) {
            engine.increment_epoch();
            std::thread::sleep(TICK);
            idle = if self.in_flight.load(SeqCst) == 0 { idle + 1 } else { 0 };
            if idle >= idle_ticks {
                self.sleep();
                idle = 0;
            }
        }
    }

    /// Waits until a call is in flight or no handle is left.
    fn sleep(&self) {
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.asleep.store(true, SeqCst);
        while self.in_flight.load(SeqCst) == 0 && !self.closed.load(SeqCst) {
            held = self.wake.wait(held).unwrap_or_else(PoisonError::into_inner);
        }
        self.asleep.store(false, SeqCst);
    }

    fn wake_up(&self) {
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.wake.notify_one();
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
    /// spins forever is still stopped at its deadline.
    #[test]
    fn a_call_begun_while_the_ticker_sleeps_still_meets_its_deadline() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        let ticker = Ticker::start_with(engine.clone(), 2).unwrap();
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

    /// The thread ends with the last handle on it, even asleep.
    #[test]
    fn the_ticker_ends_with_its_last_handle() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        let ticker = Ticker::start_with(engine, 1).unwrap();
        let other = ticker.clone();
        wait_until_asleep(&ticker);
        let shared = Arc::downgrade(&ticker.handle.0);
        drop(ticker);
        assert!(!other.handle.0.closed.load(SeqCst), "a handle is left");
        drop(other);
        let ended = std::time::Instant::now();
        // The thread held the last reference to the shared state.
        while shared.upgrade().is_some() {
            assert!(ended.elapsed() < Duration::from_secs(30), "the ticker outlived its handles");
            std::thread::yield_now();
        }
    }
}
