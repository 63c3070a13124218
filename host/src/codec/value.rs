//! The values that travel on the wire: the JavaScript values `@ezez/utils` can
//! carry, plus byte buffers (the `t` element).

use bytes::Bytes;

/// One wire value, as a JavaScript peer sees it. Objects compare equal
/// whatever the order of their keys, as JavaScript's deep equality does.
#[derive(Debug, Clone)]
pub enum Value {
    Undefined,
    Null,
    Bool(bool),
    /// A JavaScript number (an IEEE double, NaN and infinities included).
    Number(f64),
    /// A JavaScript bigint. Values beyond 128 bits are refused by the decoder.
    BigInt(i128),
    String(String),
    /// A byte buffer; only a whole argument can be one (a `t` element).
    Bytes(Bytes),
    Array(Vec<Value>),
    /// A plain object, keys in the order the peer wrote them.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// What a JavaScript developer would call this value's type, for error
    /// messages (`expected string, got number`).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::BigInt(_) => "bigint",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The value of an object's key, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Roughly how many bytes this value takes on the wire (payloads, not
    /// framing): enough to refuse a giant message before encoding it.
    pub fn size_hint(&self) -> usize {
        match self {
            Value::String(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Array(items) => Value::size_hint_of(items) + items.len(),
            Value::Object(entries) => entries.iter().map(|(k, v)| k.len() + v.size_hint() + 2).sum(),
            _ => 8,
        }
    }

    /// [`size_hint`](Self::size_hint) of several values together (an
    /// event's arguments).
    pub fn size_hint_of(values: &[Value]) -> usize {
        values.iter().map(Value::size_hint).sum()
    }

    /// Whether this is `null` or `undefined`.
    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Null | Value::Undefined)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::BigInt(a), Value::BigInt(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| other.get(k) == Some(v))
            }
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
