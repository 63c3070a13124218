//! An event the server sends, encoded once however many clients get it.
//!
//! The event id counts per connection, so it is the one part that differs
//! between recipients: the name (head) and the reply-to plus arguments (tail)
//! are encoded once per codec and shared; each recipient's frame is
//! `head + id + tail`, a copy of already encoded bytes. An event with one
//! recipient (a reply) is encoded whole instead, which saves that copy.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::message::{id_value, reply_to_value};
use super::{Codec, Frame, Value, binary, json};

/// An outgoing event, shared by all its recipients.
#[derive(Debug)]
pub struct OutgoingEvent {
    name: String,
    reply_to: Option<u64>,
    args: Vec<Value>,
    /// Taken once: the registry and the outbox ask for it three times an
    /// echo, and each asking walked the arguments.
    size_hint: usize,
    /// The shared halves per codec, made for a second recipient. Boxed: a
    /// reply has one recipient, and inline they made each move of a reply
    /// (four an echo) a `memcpy` call of 200 bytes instead of a few stores.
    binary: OnceLock<Box<(Bytes, Bytes)>>,
    json: OnceLock<Box<(String, String)>>,
}

impl OutgoingEvent {
    pub fn new(name: impl Into<String>, reply_to: Option<u64>, args: Vec<Value>) -> Self {
        let name = name.into();
        let size_hint = name.len() + Value::size_hint_of(&args);
        OutgoingEvent { name, reply_to, args, size_hint, binary: OnceLock::new(), json: OnceLock::new() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Roughly how many bytes it takes on the wire (its name and payloads).
    pub fn size_hint(&self) -> usize {
        self.size_hint
    }

    pub fn reply_to(&self) -> Option<u64> {
        self.reply_to
    }

    pub fn args(&self) -> &[Value] {
        &self.args
    }

    /// The frame for a recipient whose next event id is `id`: encoded whole
    /// when nobody else holds the event, else from the shared halves.
    pub fn into_frame(self: Arc<Self>, codec: Codec, id: u64) -> Frame {
        let event = match Arc::try_unwrap(self) {
            Ok(event) => event,
            Err(shared) => return shared.frame(codec, id),
        };
        let (name, id, reply_to) = (Value::String(event.name), id_value(id), reply_to_value(event.reply_to));
        codec.encode_values([&name, &id, &reply_to].into_iter().chain(&event.args))
    }

    /// The frame for one of its recipients, whose next event id is `id`.
    pub fn frame(&self, codec: Codec, id: u64) -> Frame {
        match codec {
            Codec::Binary => {
                let (head, tail) = &**self.binary.get_or_init(|| {
                    let head = binary::encode([&Value::String(self.name.clone())]);
                    let reply_to = reply_to_value(self.reply_to);
                    let tail = binary::encode(std::iter::once(&reply_to).chain(&self.args));
                    Box::new((head.into(), tail.into()))
                });
                let mut frame = Vec::with_capacity(head.len() + tail.len() + 16);
                frame.extend_from_slice(head);
                binary::encode_value(&id_value(id), &mut frame);
                frame.extend_from_slice(tail);
                Frame::Binary(frame.into())
            }
            Codec::Json => {
                let (head, tail) = &**self.json.get_or_init(|| {
                    let head = json::encode_frame([&Value::String(self.name.clone())]);
                    let reply_to = reply_to_value(self.reply_to);
                    let tail = json::encode_frame(std::iter::once(&reply_to).chain(&self.args));
                    // `["name"` and `replyTo,...]`, to be joined by `,id,`.
                    Box::new((head[..head.len() - 1].to_owned(), tail[1..].to_owned()))
                });
                Frame::Text(format!("{head},{id},{tail}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Event, Message};

    #[test]
    fn per_recipient_frames_equal_whole_encodings() {
        let args = vec!["room".into(), Value::Bytes(Bytes::from_static(b"\x01")), Value::Number(2.5)];
        let event = OutgoingEvent::new("said", Some(4), args.clone());
        for codec in [Codec::Binary, Codec::Json] {
            for id in [1, 77] {
                let whole = Message::Event(Event { name: "said".into(), id, reply_to: Some(4), args: args.clone() });
                assert_eq!(event.frame(codec, id), codec.encode(&whole));
            }
        }
    }

    #[test]
    fn an_unshared_event_is_encoded_whole_and_a_shared_one_from_its_halves_alike() {
        let args = vec!["x".repeat(300).into(), Value::Null, Value::Bytes(Bytes::from_static(b"\x00\x02"))];
        for (codec, reply_to) in [(Codec::Binary, None), (Codec::Json, Some(9))] {
            let whole = Message::Event(Event { name: "said".into(), id: 3, reply_to, args: args.clone() });
            let alone = Arc::new(OutgoingEvent::new("said", reply_to, args.clone()));
            assert_eq!(alone.into_frame(codec, 3), codec.encode(&whole));
            let shared = Arc::new(OutgoingEvent::new("said", reply_to, args.clone()));
            let other = shared.clone();
            assert_eq!(shared.into_frame(codec, 3), codec.encode(&whole));
            assert_eq!(other.into_frame(codec, 3), codec.encode(&whole), "the last holder encodes whole");
        }
    }
}
