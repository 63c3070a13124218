//! Bytes <-> messages, with no I/O: the ezez binary framing with its tagged
//! values (byte-compatible with `@ezez/utils`), and a plain JSON text codec.

mod binary;
mod js;
mod json;
mod message;
mod outgoing;
mod value;

pub use js::{js_number_to_string, js_string_to_number};
pub use message::{AUTH, AUTH_OK, AUTH_REJECTED, ERROR, Event, Message, PROTOCOL_VERSION, RESERVED_PREFIX};
pub use outgoing::OutgoingEvent;
pub use value::Value;

use bytes::Bytes;

/// Splits a binary frame into its values (any frame of `@ezez/utils`,
/// protocol message or not).
pub fn decode_values(frame: &Bytes) -> Result<Vec<Value>, CodecError> {
    binary::decode(frame)
}

/// Encodes values as one binary frame, as `serializeToBuffer` does.
pub fn encode_values(values: &[Value]) -> Vec<u8> {
    binary::encode(values)
}

/// Splits a JSON text frame into its values (any JSON array, protocol
/// message or not).
pub fn decode_text(text: &str) -> Result<Vec<Value>, CodecError> {
    json::decode_frame(text)
}

/// Encodes values as one JSON text frame, as `JSON.stringify` writes them.
pub fn encode_text(values: &[Value]) -> String {
    json::encode_frame(values)
}

/// A WebSocket message payload as the codecs produce and consume it.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Binary(Bytes),
    Text(String),
}

impl Frame {
    /// The payload's size in bytes.
    pub fn payload_len(&self) -> usize {
        match self {
            Frame::Binary(bytes) => bytes.len(),
            Frame::Text(text) => text.len(),
        }
    }
}

/// Which codec a connection speaks; chosen by the type of its first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// The ezez binary framing (what `@ezez/ws-client` speaks).
    Binary,
    /// JSON arrays in text frames.
    Json,
}

impl Codec {
    /// Decodes one frame into a message.
    pub fn decode(frame: &Frame) -> Result<Message, CodecError> {
        let values = match frame {
            Frame::Binary(bytes) => binary::decode(bytes)?,
            Frame::Text(text) => json::decode_frame(text)?,
        };
        Message::from_values(values)
    }

    /// Encodes a message in this codec.
    pub fn encode(self, message: &Message) -> Frame {
        self.encode_values(&message.to_values())
    }

    /// Encodes a message's values, in order, in this codec.
    fn encode_values<'a, I>(self, values: I) -> Frame
    where
        I: IntoIterator<Item = &'a Value>,
        I::IntoIter: Clone,
    {
        match self {
            Codec::Binary => Frame::Binary(binary::encode(values).into()),
            Codec::Json => Frame::Text(json::encode_frame(values)),
        }
    }
}

/// Why a frame is not a protocol message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    #[error("empty frame")]
    Empty,
    #[error("element header has no terminating NUL byte")]
    NoHeaderEnd,
    #[error("element length {0:?} is not a non-negative integer")]
    BadLength(String),
    #[error("unknown element mark {0:?}")]
    UnknownMark(char),
    #[error("element wants {wanted} bytes, {left} left")]
    Truncated { wanted: usize, left: usize },
    #[error("element is not followed by a NUL separator")]
    MissingSeparator,
    #[error("invalid UTF-8 in a text element")]
    InvalidUtf8,
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("unknown value tag {0:?}")]
    UnknownTag(String),
    #[error("bigint {0:?} is not an integer within 128 bits")]
    BadBigInt(String),
    #[error("not a protocol message: {0}")]
    NotAMessage(String),
}
