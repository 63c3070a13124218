//! A component's initial memory images, built before its first instance.
//!
//! On Linux wasmtime copies each module's initial memory into a memfd and
//! seals it, so every instance (the first, and each fresh one after a trap)
//! maps it copy-on-write instead of copying. Sealing can fail with `EBUSY`
//! while the kernel still holds a transient reference to one of the memfd's
//! fresh pages (seen once in CI, for the 18 MB Python guest), after waiting
//! a few tens of milliseconds for it to go. Left to the first instantiation,
//! that refused the handler; built here, the step is named and retried a few
//! times before it fails. Wasmtime does not keep a failed build, so a retry
//! starts over.

use std::io::ErrorKind;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::error::Context as _;

use super::instance::one_line;

/// Pauses between attempts: the kernel has already waited before each `EBUSY`.
const RETRY_DELAYS: [Duration; 3] = [Duration::from_millis(20), Duration::from_millis(100), Duration::from_millis(500)];

/// Builds `component`'s memory images, retrying while the kernel says busy.
pub fn build(component: &Component, handler: &str) -> wasmtime::Result<()> {
    retry_while_busy(&RETRY_DELAYS, handler, || component.initialize_copy_on_write_image())
        .context("cannot build the handler's initial memory image (a sealed memfd)")
}

/// Calls `attempt` until it succeeds, fails for another reason, or the
/// delays run out; the last error is returned.
fn retry_while_busy(
    delays: &[Duration],
    handler: &str,
    mut attempt: impl FnMut() -> wasmtime::Result<()>,
) -> wasmtime::Result<()> {
    let mut delays = delays.iter();
    loop {
        match attempt() {
            Err(error) if is_busy(&error) => match delays.next() {
                Some(delay) => {
                    tracing::warn!(handler, ?delay, error = %one_line(&error), "the kernel was busy; trying again");
                    std::thread::sleep(*delay);
                }
                None => {
                    return Err(error.context("the kernel stayed busy through every retry: load the handler again"));
                }
            },
            outcome => return outcome,
        }
    }
}

/// Whether an I/O error in `error`'s chain is `EBUSY`.
fn is_busy(error: &wasmtime::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == ErrorKind::ResourceBusy)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error shaped like wasmtime's: the memfd crate's error around the
    /// kernel's, with context on top.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot add seals to the memfd")]
    struct Seal(#[source] std::io::Error);

    fn busy() -> wasmtime::Error {
        let kernel = std::io::Error::from_raw_os_error(16); // EBUSY
        wasmtime::Error::new(Seal(kernel)).context("instantiating")
    }

    const NO_WAIT: [Duration; 3] = [Duration::ZERO; 3];

    #[test]
    fn busy_is_found_anywhere_in_the_chain() {
        assert!(is_busy(&busy()));
        assert!(!is_busy(&wasmtime::format_err!("unreachable executed")));
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        assert!(!is_busy(&wasmtime::Error::new(Seal(denied))));
    }

    #[test]
    fn a_busy_kernel_is_retried_until_it_succeeds() {
        let mut calls = 0;
        let outcome = retry_while_busy(&NO_WAIT, "test", || {
            calls += 1;
            if calls < 3 { Err(busy()) } else { Ok(()) }
        });
        assert!(outcome.is_ok());
        assert_eq!(calls, 3);
    }

    #[test]
    fn retries_stop_when_the_delays_run_out() {
        let mut calls = 0;
        let error = retry_while_busy(&NO_WAIT, "test", || {
            calls += 1;
            Err(busy())
        })
        .unwrap_err();
        assert_eq!(calls, 4, "one attempt and one per delay");
        let message = format!("{error:#}");
        assert!(message.contains("stayed busy") && message.contains("Device or resource busy"), "{message}");
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut calls = 0;
        let error = retry_while_busy(&NO_WAIT, "test", || {
            calls += 1;
            Err(wasmtime::format_err!("out of memory"))
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(error.to_string(), "out of memory");
    }
}
