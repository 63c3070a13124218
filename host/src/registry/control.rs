//! What a connection and the registry share: a request to close it (with
//! the close frames a server may send), and whether its peer was heard from
//! since the last ping.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The longest close reason a close frame carries (a control frame's 125
/// bytes, less the code); a longer one is cut at a character boundary.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Whether a server may send `code` in a close frame (RFC 6455 7.4: not
/// 1004-1006, 1015, unassigned or out-of-range codes).
pub fn close_code_allowed(code: u16) -> bool {
    CloseCode::from(code).is_allowed()
}

/// A connection's shared state: the request to close it, raised by anyone
/// (the handler, the registry, the reader) and seen by both halves of the
/// connection, and whether the reader heard from the peer since the
/// registry's last ping round ([`super::heartbeat`]).
#[derive(Debug)]
pub struct Control {
    state: watch::Sender<Option<(u16, String)>>,
    heard: AtomicBool,
}

impl Default for Control {
    fn default() -> Self {
        // A new connection counts as heard: the first round pings it.
        Control { state: watch::Sender::new(None), heard: AtomicBool::new(true) }
    }
}

impl Control {
    /// The reader got something from the peer (a message, a pong).
    pub fn heard(&self) {
        self.heard.store(true, Ordering::Relaxed);
    }

    /// Whether the peer was heard from since the last call; clears it.
    pub(super) fn take_heard(&self) -> bool {
        self.heard.swap(false, Ordering::Relaxed)
    }

    /// Asks for the connection to close; the first request wins. A code a
    /// server may not send becomes 1011 (with a warning), and the reason is
    /// cut to what a close frame holds: the peer gets a valid close either way.
    pub fn request(&self, code: u16, reason: impl Into<String>) {
        let mut reason = reason.into();
        reason.truncate(reason.floor_char_boundary(MAX_CLOSE_REASON_BYTES));
        let code = if close_code_allowed(code) {
            code
        } else {
            tracing::warn!("close code {code} may not be sent; closing with 1011 instead");
            1011
        };
        self.state.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            *state = Some((code, reason));
            true
        });
    }

    /// The close asked for so far, if any.
    pub fn current(&self) -> Option<(u16, String)> {
        self.state.borrow().clone()
    }

    /// Waits until a close is requested, and says how.
    pub async fn requested(&self) -> (u16, String) {
        let mut watcher = self.state.subscribe();
        let request = watcher.wait_for(Option::is_some).await.expect("the sender lives in self");
        request.clone().expect("waited for some")
    }
}

#[cfg(test)]
mod tests {
    use super::Control;

    #[test]
    fn a_close_request_is_one_a_close_frame_can_carry() {
        let (forbidden, fine) = (Control::default(), Control::default());
        forbidden.request(1006, "ü".repeat(100));
        assert_eq!(forbidden.current(), Some((1011, "ü".repeat(61))));
        fine.request(4000, "bye");
        fine.request(4001, "later requests lose");
        assert_eq!(fine.current(), Some((4000, "bye".into())));
    }
}
