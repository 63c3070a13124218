//! Protocol messages on top of a codec's values: the auth handshake and
//! application events `[name, eventId, replyTo, ...args]`.

use super::{CodecError, Value};

/// The reserved prefix of control events.
pub const RESERVED_PREFIX: &str = "ezez-ws::";
pub const AUTH: &str = "ezez-ws::auth";
pub const AUTH_OK: &str = "ezez-ws::auth-ok";
pub const AUTH_REJECTED: &str = "ezez-ws::auth-rejected";
/// ws-host's error reply to an event that did not fit the handler's types.
pub const ERROR: &str = "ezez-ws::error";
/// The protocol version the auth request must carry.
pub const PROTOCOL_VERSION: f64 = 1.0;

/// Largest id a JavaScript peer can count to without losing precision.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// One protocol message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `["ezez-ws::auth", key, version]`, the client's first frame.
    Auth {
        key: String,
        version: Value,
    },
    AuthOk,
    AuthRejected {
        reason: String,
    },
    Event(Event),
}

/// An application event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    /// Counts per connection and direction from 1.
    pub id: u64,
    /// The peer's event this one answers.
    pub reply_to: Option<u64>,
    pub args: Vec<Value>,
}

impl Message {
    /// Reads a message from a frame's values.
    pub fn from_values(mut values: Vec<Value>) -> Result<Message, CodecError> {
        // The message's own fields are drained off the front, so an event's
        // arguments stay in the frame's allocation (collecting what is left
        // of an iterator would copy them into a new one).
        let fields = values.len().min(3);
        let mut fields = values.drain(..fields);
        let name = match fields.next() {
            Some(Value::String(name)) => name,
            Some(other) => return Err(CodecError::NotAMessage(format!("event name is a {}", other.kind()))),
            None => return Err(CodecError::Empty),
        };
        match name.as_str() {
            AUTH => {
                let key = match fields.next() {
                    Some(Value::String(key)) => key,
                    Some(other) => return Err(CodecError::NotAMessage(format!("auth key is a {}", other.kind()))),
                    None => return Err(CodecError::NotAMessage("auth without a key".into())),
                };
                Ok(Message::Auth { key, version: fields.next().unwrap_or(Value::Undefined) })
            }
            AUTH_OK => Ok(Message::AuthOk),
            AUTH_REJECTED => {
                let reason = match fields.next() {
                    Some(Value::String(reason)) => reason,
                    _ => String::new(),
                };
                Ok(Message::AuthRejected { reason })
            }
            _ => {
                let id = fields
                    .next()
                    .as_ref()
                    .and_then(as_id)
                    .ok_or_else(|| CodecError::NotAMessage(format!("{name}: eventId is not a whole number")))?;
                let reply_to = match fields.next() {
                    None | Some(Value::Null | Value::Undefined) => None,
                    Some(v) => Some(as_id(&v).ok_or_else(|| {
                        CodecError::NotAMessage(format!("{name}: replyTo is not a whole number or null"))
                    })?),
                };
                drop(fields);
                Ok(Message::Event(Event { name, id, reply_to: reply_to.filter(|id| *id != 0), args: values }))
            }
        }
    }

    /// The values that carry this message.
    pub fn to_values(&self) -> Vec<Value> {
        match self {
            Message::Auth { key, version } => vec![AUTH.into(), key.as_str().into(), version.clone()],
            Message::AuthOk => vec![AUTH_OK.into()],
            Message::AuthRejected { reason } => vec![AUTH_REJECTED.into(), reason.as_str().into()],
            Message::Event(event) => {
                let mut values = Vec::with_capacity(event.args.len() + 3);
                values.push(event.name.as_str().into());
                values.push(id_value(event.id));
                values.push(reply_to_value(event.reply_to));
                values.extend(event.args.iter().cloned());
                values
            }
        }
    }
}

/// An event id as a wire value.
pub fn id_value(id: u64) -> Value {
    Value::Number(id as f64)
}

/// A reply-to id as a wire value (`null` when there is none).
pub fn reply_to_value(reply_to: Option<u64>) -> Value {
    reply_to.map_or(Value::Null, id_value)
}

fn as_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) if n.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(n) => Some(*n as u64),
        Value::BigInt(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_ids_and_reply_to() {
        let values = vec!["say".into(), Value::Number(3.0), Value::Null, "hi".into()];
        let message = Message::from_values(values.clone()).unwrap();
        assert_eq!(
            message,
            Message::Event(Event { name: "say".into(), id: 3, reply_to: None, args: vec!["hi".into()] })
        );
        assert_eq!(message.to_values(), values);
    }

    #[test]
    fn the_fields_that_follow_the_header_are_the_arguments_in_order() {
        let args: Vec<Value> = vec!["a".into(), Value::Number(2.0), Value::Null];
        let values = [vec!["x".into(), Value::Number(7.0), Value::Number(5.0)], args.clone()].concat();
        let Message::Event(event) = Message::from_values(values).unwrap() else { panic!() };
        assert_eq!((event.id, event.reply_to, event.args), (7, Some(5), args));
        let Message::Event(event) = Message::from_values(vec!["x".into(), Value::Number(7.0)]).unwrap() else {
            panic!()
        };
        assert_eq!((event.reply_to, event.args), (None, vec![]));
        let auth = vec![AUTH.into(), "key".into(), Value::Number(1.0), "ignored".into()];
        assert_eq!(
            Message::from_values(auth).unwrap(),
            Message::Auth { key: "key".into(), version: Value::Number(1.0) }
        );
    }

    #[test]
    fn reply_to_zero_is_no_reply() {
        let values = vec!["x".into(), Value::Number(1.0), Value::Number(0.0)];
        let Message::Event(event) = Message::from_values(values).unwrap() else { panic!() };
        assert_eq!(event.reply_to, None);
    }

    #[test]
    fn structural_errors() {
        for values in [
            vec![Value::Number(1.0)],
            vec!["x".into()],
            vec!["x".into(), Value::Number(1.5)],
            vec!["x".into(), Value::Number(-1.0)],
            vec!["x".into(), Value::Number(1.0), "3".into()],
            vec![AUTH.into(), Value::Number(1.0)],
        ] {
            assert!(Message::from_values(values.clone()).is_err(), "{values:?}");
        }
    }
}
