//! Requests to close a connection, and the close frames a server may send.

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

/// A request to close a connection, raised by anyone (the handler, the
/// registry, the reader), seen by both halves of the connection.
#[derive(Debug)]
pub struct CloseRequest {
    state: watch::Sender<Option<(u16, String)>>,
}

impl Default for CloseRequest {
    fn default() -> Self {
        CloseRequest { state: watch::Sender::new(None) }
    }
}

impl CloseRequest {
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
    use super::CloseRequest;

    #[test]
    fn a_close_request_is_one_a_close_frame_can_carry() {
        let (forbidden, fine) = (CloseRequest::default(), CloseRequest::default());
        forbidden.request(1006, "ü".repeat(100));
        assert_eq!(forbidden.current(), Some((1011, "ü".repeat(61))));
        fine.request(4000, "bye");
        fine.request(4001, "later requests lose");
        assert_eq!(fine.current(), Some((4000, "bye".into())));
    }
}
