//! WIT value -> wire value. The type is needed where the value alone is
//! ambiguous: an empty `list<u8>` is still bytes.

use bytes::Bytes;
use wasmtime::component::Val;
use wasmtime::component::types::Type;

use super::wire_name;
use crate::codec::Value;

/// Converts a value the guest produced into its wire form.
pub fn from_wit(val: &Val, ty: &Type) -> Value {
    match (val, ty) {
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
        (Val::List(items), Type::List(list)) => {
            let element = list.ty();
            if element == Type::U8 {
                let bytes: Vec<u8> = items.iter().map(|v| if let Val::U8(b) = v { *b } else { 0 }).collect();
                Value::Bytes(Bytes::from(bytes))
            } else {
                Value::Array(items.iter().map(|v| from_wit(v, &element)).collect())
            }
        }
        (Val::FixedLengthList(items), Type::FixedLengthList(list)) => {
            let element = list.ty();
            Value::Array(items.iter().map(|v| from_wit(v, &element)).collect())
        }
        (Val::Tuple(items), Type::Tuple(tuple)) => {
            Value::Array(items.iter().zip(tuple.types()).map(|(v, ty)| from_wit(v, &ty)).collect())
        }
        (Val::Record(fields), Type::Record(record)) => Value::Object(
            fields
                .iter()
                .zip(record.fields())
                .map(|((name, v), field)| (wire_name(name), from_wit(v, &field.ty)))
                .collect(),
        ),
        (Val::Variant(tag, payload), Type::Variant(variant)) => {
            let case_ty = variant.cases().find(|c| c.name == tag).and_then(|c| c.ty);
            tagged(tag, payload.as_deref().zip(case_ty.as_ref()))
        }
        (Val::Enum(name), _) => Value::String(name.clone()),
        (Val::Flags(set), Type::Flags(flags)) => {
            Value::Object(flags.names().map(|n| (wire_name(n), Value::Bool(set.iter().any(|s| s == n)))).collect())
        }
        (Val::Option(inner), Type::Option(option)) => {
            let inner_ty = option.ty();
            match (inner, &inner_ty) {
                (None, _) => Value::Null,
                (Some(v), Type::Option(_)) => tagged("some", Some((v, &inner_ty))),
                (Some(v), _) => from_wit(v, &inner_ty),
            }
        }
        (Val::Result(result), Type::Result(types)) => match result {
            Ok(v) => tagged("ok", v.as_deref().zip(types.ok().as_ref())),
            Err(v) => tagged("err", v.as_deref().zip(types.err().as_ref())),
        },
        // Load-time checks keep other types out of events.
        _ => Value::Undefined,
    }
}

fn tagged(tag: &str, payload: Option<(&Val, &Type)>) -> Value {
    let mut entries = vec![("tag".to_owned(), Value::String(tag.to_owned()))];
    if let Some((v, ty)) = payload {
        entries.push(("val".to_owned(), from_wit(v, ty)));
    }
    Value::Object(entries)
}
