//! WIT value -> wire value. The layout is needed where the value alone is
//! ambiguous: an empty `list<u8>` is still bytes.

use bytes::Bytes;
use wasmtime::component::Val;

use super::layout::Layout;
use crate::codec::Value;

/// The bytes of a `list<u8>` value.
pub fn bytes_of(items: &[Val]) -> Vec<u8> {
    items.iter().map(|v| if let Val::U8(b) = v { *b } else { 0 }).collect()
}

/// Converts a value the guest produced into its wire form.
pub fn from_wit(val: &Val, layout: &Layout) -> Value {
    match (val, layout) {
        (Val::Bool(b), _) => Value::Bool(*b),
        (Val::S8(n), _) => Value::Number(f64::from(*n)),
        (Val::U8(n), _) => Value::Number(f64::from(*n)),
        (Val::S16(n), _) => Value::Number(f64::from(*n)),
        (Val::U16(n), _) => Value::Number(f64::from(*n)),
        (Val::S32(n), _) => Value::Number(f64::from(*n)),
        (Val::U32(n), _) => Value::Number(f64::from(*n)),
        (Val::S64(n), _) => Value::BigInt(i128::from(*n)),
        (Val::U64(n), _) => Value::BigInt(i128::from(*n)),
        (Val::Float32(n), _) => Value::Number(f64::from(*n)),
        (Val::Float64(n), _) => Value::Number(*n),
        (Val::Char(c), _) => Value::String(c.to_string()),
        (Val::String(s), _) => Value::String(s.clone()),
        (Val::List(items), Layout::Bytes) => Value::Bytes(Bytes::from(bytes_of(items))),
        (Val::List(items) | Val::FixedLengthList(items), Layout::List(element) | Layout::FixedList(element, _)) => {
            Value::Array(items.iter().map(|v| from_wit(v, element)).collect())
        }
        (Val::Tuple(items), Layout::Tuple(layouts)) => {
            Value::Array(items.iter().zip(layouts).map(|(v, layout)| from_wit(v, layout)).collect())
        }
        (Val::Record(values), Layout::Record(fields)) => Value::Object(
            values
                .iter()
                .zip(fields)
                .map(|((_, v), field)| (field.name.wire.clone(), from_wit(v, &field.layout)))
                .collect(),
        ),
        (Val::Variant(tag, payload), Layout::Variant(cases)) => {
            let case_layout = cases.iter().find(|c| c.name == *tag).and_then(|c| c.payload.as_ref());
            tagged(tag, payload.as_deref().zip(case_layout))
        }
        (Val::Enum(name), _) => Value::String(name.clone()),
        (Val::Flags(set), Layout::Flags(names)) => {
            Value::Object(names.iter().map(|n| (n.wire.clone(), Value::Bool(set.contains(&n.wit)))).collect())
        }
        (Val::Option(inner), Layout::Option(inner_layout)) => match (inner, &**inner_layout) {
            (None, _) => Value::Null,
            (Some(v), Layout::Option(_)) => tagged("some", Some((v, inner_layout))),
            (Some(v), _) => from_wit(v, inner_layout),
        },
        (Val::Result(result), Layout::Result { ok, err }) => match result {
            Ok(v) => tagged("ok", v.as_deref().zip(ok.as_deref())),
            Err(v) => tagged("err", v.as_deref().zip(err.as_deref())),
        },
        // Load-time checks keep other types out of events.
        _ => Value::Undefined,
    }
}

fn tagged(tag: &str, payload: Option<(&Val, &Layout)>) -> Value {
    let mut entries = vec![("tag".to_owned(), Value::String(tag.to_owned()))];
    if let Some((v, layout)) = payload {
        entries.push(("val".to_owned(), from_wit(v, layout)));
    }
    Value::Object(entries)
}
