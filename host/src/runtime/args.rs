//! An event's arguments once checked against its declared types: wasmtime
//! `Val`s for a dynamic call, or plain strings and bytes for the signatures
//! that have a typed call (see [`TypedCall`]).

use bytes::Bytes;
use wasmtime::component::Val;

use crate::bridge::{Layout, bytes_of, to_wit};
use crate::codec::Value;

/// A parameter or result a typed call passes as it is: a `string`, or a
/// `list<u8>` as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    Text,
    Bytes,
}

impl Plain {
    fn of(layout: &Layout) -> Option<Plain> {
        match layout {
            Layout::String => Some(Plain::Text),
            Layout::Bytes => Some(Plain::Bytes),
            _ => None,
        }
    }
}

/// The parameters of a typed call, after the sender if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Text,
    TwoTexts,
    Bytes,
    TextAndBytes,
}

impl Shape {
    const ALL: [Shape; 4] = [Shape::Text, Shape::TwoTexts, Shape::Bytes, Shape::TextAndBytes];

    /// What each parameter is, in order.
    pub fn kinds(self) -> &'static [Plain] {
        match self {
            Shape::Text => &[Plain::Text],
            Shape::TwoTexts => &[Plain::Text, Plain::Text],
            Shape::Bytes => &[Plain::Bytes],
            Shape::TextAndBytes => &[Plain::Text, Plain::Bytes],
        }
    }
}

/// A signature wasmtime can call through a typed function, without `Val`s:
/// a string, two strings, bytes, or a string and bytes in (after the
/// sender, if any); nothing, a string or bytes out, as `echo`, `echo-bytes`
/// and the chat's `say` are. Decided once at load. A dynamic call costs
/// about a third more for strings, and builds a `Val` per byte of a
/// `list<u8>` on the way in and out: a 16 KiB `echo-bytes` took 5.97M
/// instructions that way, 102k typed (callgrind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypedCall {
    pub params: Shape,
    pub reply: Option<Plain>,
}

impl TypedCall {
    pub fn of(params: &[(String, Layout)], results: &[Layout]) -> Option<TypedCall> {
        let kinds: Vec<Plain> = params.iter().map(|(_, layout)| Plain::of(layout)).collect::<Option<_>>()?;
        let params = Shape::ALL.into_iter().find(|shape| shape.kinds() == kinds)?;
        let reply = match results {
            [] => None,
            [layout] => Some(Plain::of(layout)?),
            _ => return None,
        };
        Some(TypedCall { params, reply })
    }
}

/// What [`Schema::convert`](super::schema::Schema::convert) makes of an
/// event's arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    /// For a dynamic call.
    Vals(Vec<Val>),
    /// For a [`TypedCall`], in its order.
    Plain(Vec<PlainArg>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlainArg {
    Text(String),
    Bytes(Vec<u8>),
}

impl PlainArg {
    /// `value` for a parameter of kind `kind` (decided at load), laid out by `layout`;
    /// what the bridge accepts besides a string or bytes (an array of
    /// numbers for bytes) too, and its error otherwise.
    pub fn from_wire(value: Value, kind: Plain, layout: &Layout) -> Result<PlainArg, String> {
        match (value, kind) {
            (Value::String(text), Plain::Text) => Ok(PlainArg::Text(text)),
            (Value::Bytes(bytes), Plain::Bytes) => Ok(PlainArg::Bytes(bytes.into())),
            (value, _) => match to_wit(&value, layout).map_err(|m| m.to_string())? {
                Val::String(text) => Ok(PlainArg::Text(text)),
                Val::List(items) => Ok(PlainArg::Bytes(bytes_of(&items))),
                _ => Err("expected a string or bytes".to_owned()),
            },
        }
    }

    pub fn to_wire(&self) -> Value {
        match self {
            PlainArg::Text(text) => Value::String(text.clone()),
            PlainArg::Bytes(bytes) => Value::Bytes(Bytes::copy_from_slice(bytes)),
        }
    }
}
