//! One connection's protocol state, with no I/O: the auth handshake (one
//! attempt, version 1), what happens to events sent before auth-ok, and
//! nothing handled after a rejection. The connection task feeds it decoded
//! messages and carries out the actions it returns.

use crate::codec::{Event, Message, PROTOCOL_VERSION, Value, js_number_to_string};
use crate::config::BeforeAuth;

/// The rejection reasons of the reference server, word for word.
pub const INVALID_AUTH_KEY: &str = "Invalid auth key";
pub const AUTH_TIMEOUT: &str = "Auth timeout";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No auth frame yet.
    AwaitingAuth,
    /// The handler is deciding.
    Authenticating,
    Open,
    /// Rejected: nothing more is handled.
    Closed,
}

/// What the connection must do next.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Ask the handler to decide on this key.
    Authenticate { key: String },
    /// Send `ezez-ws::auth-rejected` with the reason, then close.
    Reject { reason: String },
    /// Hand the event to the handler.
    Dispatch(Event),
    /// Close the connection with this code and reason.
    Close { code: u16, reason: &'static str },
    /// Nothing to do; the text says why, for the debug log.
    Ignore(&'static str),
}

/// The protocol state of one connection.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    policy: BeforeAuth,
    queue: Vec<Event>,
    queued_bytes: usize,
    queue_limit: usize,
}

impl Session {
    pub fn new(policy: BeforeAuth, queue_limit: usize) -> Self {
        Session { phase: Phase::AwaitingAuth, policy, queue: Vec::new(), queued_bytes: 0, queue_limit }
    }

    /// Whether the auth frame has arrived (the auth timeout stops then).
    pub fn auth_sent(&self) -> bool {
        self.phase != Phase::AwaitingAuth
    }

    /// A message arrived; `size` is its frame's length, for the queue limit.
    pub fn on_message(&mut self, message: Message, size: usize) -> Action {
        if self.phase == Phase::Closed {
            return Action::Ignore("frame after rejection");
        }
        match message {
            Message::Auth { key, version } => {
                if self.phase != Phase::AwaitingAuth {
                    return Action::Ignore("second auth frame (one attempt per connection)");
                }
                if version != Value::Number(PROTOCOL_VERSION) {
                    self.phase = Phase::Closed;
                    return Action::Reject { reason: version_mismatch(&version) };
                }
                self.phase = Phase::Authenticating;
                Action::Authenticate { key }
            }
            Message::AuthOk | Message::AuthRejected { .. } => Action::Ignore("server-only control message"),
            Message::Event(event) => {
                if self.phase == Phase::Open {
                    return Action::Dispatch(event);
                }
                match self.policy {
                    BeforeAuth::Ignore => Action::Ignore("event before auth (messages-before-auth = ignore)"),
                    BeforeAuth::Accept => Action::Dispatch(event),
                    BeforeAuth::Queue => {
                        if self.queued_bytes + size > self.queue_limit {
                            self.phase = Phase::Closed;
                            self.queue.clear();
                            return Action::Close { code: 1008, reason: "Pre-auth queue full" };
                        }
                        self.queued_bytes += size;
                        self.queue.push(event);
                        Action::Ignore("queued until auth-ok")
                    }
                }
            }
        }
    }

    /// The handler decided. On success returns the queued events to handle
    /// (after auth-ok went out); on rejection the action to take.
    pub fn on_auth_result(&mut self, verdict: Result<(), String>) -> Result<Vec<Event>, Action> {
        if self.phase != Phase::Authenticating {
            return Ok(Vec::new());
        }
        match verdict {
            Ok(()) => {
                self.phase = Phase::Open;
                self.queued_bytes = 0;
                Ok(std::mem::take(&mut self.queue))
            }
            Err(reason) => {
                self.phase = Phase::Closed;
                self.queue.clear();
                Err(Action::Reject { reason })
            }
        }
    }

    /// The auth timeout fired: rejects unless the auth frame has arrived.
    pub fn on_auth_timeout(&mut self) -> Option<Action> {
        (self.phase == Phase::AwaitingAuth).then(|| {
            self.phase = Phase::Closed;
            Action::Reject { reason: AUTH_TIMEOUT.into() }
        })
    }
}

/// `Protocol version mismatch, wanted 1, got <v>`, with `<v>` as JavaScript
/// would print it.
fn version_mismatch(version: &Value) -> String {
    let got = match version {
        Value::Number(n) => js_number_to_string(*n),
        Value::String(s) => s.clone(),
        Value::BigInt(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Undefined => "undefined".into(),
        Value::Bytes(_) | Value::Array(_) | Value::Object(_) => "[object]".into(),
    };
    format!("Protocol version mismatch, wanted {}, got {got}", js_number_to_string(PROTOCOL_VERSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(version: Value) -> Message {
        Message::Auth { key: "k".into(), version }
    }

    fn event(id: u64) -> Message {
        Message::Event(Event { name: "say".into(), id, reply_to: None, args: vec![] })
    }

    #[test]
    fn one_auth_attempt_then_open() {
        let mut s = Session::new(BeforeAuth::Ignore, 100);
        assert_eq!(s.on_message(auth(Value::Number(1.0)), 10), Action::Authenticate { key: "k".into() });
        assert!(matches!(s.on_message(auth(Value::Number(1.0)), 10), Action::Ignore(_)));
        assert_eq!(s.on_auth_result(Ok(())), Ok(vec![]));
        assert!(matches!(s.on_message(event(1), 10), Action::Dispatch(_)));
        assert!(matches!(s.on_message(auth(Value::Number(1.0)), 10), Action::Ignore(_)));
    }

    #[test]
    fn version_mismatch_rejects_with_the_reference_reason() {
        let mut s = Session::new(BeforeAuth::Ignore, 100);
        assert_eq!(
            s.on_message(auth(Value::Number(2.0)), 10),
            Action::Reject { reason: "Protocol version mismatch, wanted 1, got 2".into() }
        );
        assert!(matches!(s.on_message(event(1), 10), Action::Ignore(_)));
    }

    #[test]
    fn nothing_is_handled_after_a_rejection() {
        let mut s = Session::new(BeforeAuth::Queue, 100);
        s.on_message(auth(Value::Number(1.0)), 10);
        s.on_message(event(1), 10);
        assert_eq!(
            s.on_auth_result(Err(INVALID_AUTH_KEY.into())),
            Err(Action::Reject { reason: INVALID_AUTH_KEY.into() })
        );
        assert!(matches!(s.on_message(event(2), 10), Action::Ignore(_)));
    }

    #[test]
    fn before_auth_policies() {
        let mut ignore = Session::new(BeforeAuth::Ignore, 100);
        assert!(matches!(ignore.on_message(event(1), 10), Action::Ignore(_)));

        let mut accept = Session::new(BeforeAuth::Accept, 100);
        assert!(matches!(accept.on_message(event(1), 10), Action::Dispatch(_)));

        let mut queue = Session::new(BeforeAuth::Queue, 100);
        queue.on_message(auth(Value::Number(1.0)), 10);
        queue.on_message(event(1), 10);
        queue.on_message(event(2), 10);
        let queued = queue.on_auth_result(Ok(())).unwrap();
        assert_eq!(queued.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn queue_overflow_closes_with_1008() {
        let mut s = Session::new(BeforeAuth::Queue, 15);
        s.on_message(event(1), 10);
        assert_eq!(s.on_message(event(2), 10), Action::Close { code: 1008, reason: "Pre-auth queue full" });
    }

    #[test]
    fn timeout_only_before_the_auth_frame() {
        let mut s = Session::new(BeforeAuth::Ignore, 100);
        assert_eq!(s.on_auth_timeout(), Some(Action::Reject { reason: AUTH_TIMEOUT.into() }));
        let mut s = Session::new(BeforeAuth::Ignore, 100);
        s.on_message(auth(Value::Number(1.0)), 10);
        assert_eq!(s.on_auth_timeout(), None);
    }
}
