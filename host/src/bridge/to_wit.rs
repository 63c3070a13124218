//! Wire value -> WIT value, checked against the declared type.

use std::fmt;

use wasmtime::component::Val;
use wasmtime::component::types::Type;

use super::{describe, wire_name};
use crate::codec::Value;

const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Where and how a value did not fit its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Path inside the value, e.g. `.msg.text` or `[2]`; empty at the top.
    pub path: String,
    pub expected: String,
    pub got: String,
}

impl Mismatch {
    fn new(expected: impl Into<String>, got: impl Into<String>) -> Self {
        Mismatch { path: String::new(), expected: expected.into(), got: got.into() }
    }

    fn at(mut self, segment: impl fmt::Display) -> Self {
        self.path = format!("{segment}{}", self.path);
        self
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path.trim_start_matches('.'))?;
        }
        write!(f, "expected {}, got {}", self.expected, self.got)
    }
}

/// Converts `value` to a WIT value of type `ty`, or says why it does not fit.
pub fn to_wit(value: &Value, ty: &Type) -> Result<Val, Mismatch> {
    let wrong = || Mismatch::new(describe(ty), value.kind());
    Ok(match ty {
        Type::Bool => match value {
            Value::Bool(b) => Val::Bool(*b),
            _ => return Err(wrong()),
        },
        Type::S8 => Val::S8(integer(value, ty)?),
        Type::U8 => Val::U8(integer(value, ty)?),
        Type::S16 => Val::S16(integer(value, ty)?),
        Type::U16 => Val::U16(integer(value, ty)?),
        Type::S32 => Val::S32(integer(value, ty)?),
        Type::U32 => Val::U32(integer(value, ty)?),
        Type::S64 => Val::S64(integer(value, ty)?),
        Type::U64 => Val::U64(integer(value, ty)?),
        Type::Float32 => match value {
            Value::Number(n) => Val::Float32(*n as f32),
            _ => return Err(wrong()),
        },
        Type::Float64 => match value {
            Value::Number(n) => Val::Float64(*n),
            _ => return Err(wrong()),
        },
        Type::Char => match value {
            Value::String(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Val::Char(c),
                    _ => {
                        return Err(Mismatch::new(describe(ty), format!("string of {} characters", s.chars().count())));
                    }
                }
            }
            _ => return Err(wrong()),
        },
        Type::String => match value {
            Value::String(s) => Val::String(s.clone()),
            _ => return Err(wrong()),
        },
        Type::List(list) => {
            let element = list.ty();
            match value {
                Value::Bytes(bytes) if element == Type::U8 => Val::List(bytes.iter().map(|b| Val::U8(*b)).collect()),
                Value::Array(items) => Val::List(items_to_wit(items, &element)?),
                _ => return Err(wrong()),
            }
        }
        Type::FixedLengthList(list) => match value {
            Value::Array(items) if items.len() == list.len() as usize => {
                Val::FixedLengthList(items_to_wit(items, &list.ty())?)
            }
            Value::Array(items) => return Err(Mismatch::new(describe(ty), format!("array of {} items", items.len()))),
            _ => return Err(wrong()),
        },
        Type::Tuple(tuple) => match value {
            Value::Array(items) if items.len() == tuple.types().len() => Val::Tuple(
                items
                    .iter()
                    .zip(tuple.types())
                    .enumerate()
                    .map(|(i, (item, ty))| to_wit(item, &ty).map_err(|m| m.at(format_args!("[{i}]"))))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Array(items) => return Err(Mismatch::new(describe(ty), format!("array of {} items", items.len()))),
            _ => return Err(wrong()),
        },
        Type::Record(record) => {
            let Value::Object(entries) = value else { return Err(wrong()) };
            let fields: Vec<_> = record.fields().map(|f| (f.name, wire_name(f.name), f.ty)).collect();
            if let Some((key, _)) = entries.iter().find(|(key, _)| !fields.iter().any(|(_, wire, _)| wire == key)) {
                return Err(Mismatch::new("no such field", "a value").at(format_args!(".{key}")));
            }
            let mut vals = Vec::with_capacity(fields.len());
            for (name, wire, ty) in fields {
                let val = match (value.get(&wire), &ty) {
                    (None, Type::Option(_)) => Val::Option(None),
                    (None, _) => {
                        return Err(Mismatch::new(describe(&ty), "nothing (missing field)").at(format_args!(".{wire}")));
                    }
                    (Some(v), _) => to_wit(v, &ty).map_err(|m| m.at(format_args!(".{wire}")))?,
                };
                vals.push((name.to_owned(), val));
            }
            Val::Record(vals)
        }
        Type::Variant(variant) => {
            let (tag, payload) = tagged(value).ok_or_else(wrong)?;
            let case = variant
                .cases()
                .find(|c| c.name == tag)
                .ok_or_else(|| Mismatch::new(describe(ty), format!("tag {tag:?}")))?;
            let payload = match (case.ty, payload) {
                (None, _) => None,
                (Some(ty), Some(v)) => Some(Box::new(to_wit(v, &ty).map_err(|m| m.at(".val"))?)),
                (Some(ty), None) => return Err(Mismatch::new(describe(&ty), "nothing").at(".val")),
            };
            Val::Variant(tag.to_owned(), payload)
        }
        Type::Enum(e) => match value {
            Value::String(s) if e.names().any(|n| n == s) => Val::Enum(s.clone()),
            Value::String(s) => return Err(Mismatch::new(describe(ty), format!("{s:?}"))),
            _ => return Err(wrong()),
        },
        Type::Flags(flags) => {
            let Value::Object(entries) = value else { return Err(wrong()) };
            let names: Vec<_> = flags.names().map(|n| (n, wire_name(n))).collect();
            let mut set = Vec::new();
            for (key, v) in entries {
                let Some((name, _)) = names.iter().find(|(_, wire)| wire == key) else {
                    return Err(Mismatch::new("no such flag", "a value").at(format_args!(".{key}")));
                };
                match v {
                    Value::Bool(true) => set.push((*name).to_owned()),
                    Value::Bool(false) | Value::Null | Value::Undefined => {}
                    other => return Err(Mismatch::new("boolean", other.kind()).at(format_args!(".{key}"))),
                }
            }
            Val::Flags(set)
        }
        Type::Option(option) => {
            let inner = option.ty();
            if value.is_nullish() {
                Val::Option(None)
            } else if let Type::Option(_) = inner {
                match tagged(value) {
                    Some(("none", _)) => Val::Option(None),
                    Some(("some", Some(v))) => {
                        Val::Option(Some(Box::new(to_wit(v, &inner).map_err(|m| m.at(".val"))?)))
                    }
                    _ => return Err(Mismatch::new("null or {tag: \"some\" | \"none\", val}", value.kind())),
                }
            } else {
                // At the top, say "T or null" rather than just "T".
                let inner_val = to_wit(value, &inner)
                    .map_err(|m| if m.path.is_empty() { Mismatch::new(describe(ty), m.got) } else { m })?;
                Val::Option(Some(Box::new(inner_val)))
            }
        }
        Type::Result(result) => {
            let (tag, payload) = tagged(value).ok_or_else(wrong)?;
            let side = match tag {
                "ok" => result.ok(),
                "err" => result.err(),
                other => return Err(Mismatch::new(describe(ty), format!("tag {other:?}"))),
            };
            let payload = match (side, payload) {
                (None, _) => None,
                (Some(ty), Some(v)) => Some(Box::new(to_wit(v, &ty).map_err(|m| m.at(".val"))?)),
                (Some(ty), None) => return Err(Mismatch::new(describe(&ty), "nothing").at(".val")),
            };
            Val::Result(if tag == "ok" { Ok(payload) } else { Err(payload) })
        }
        _ => return Err(Mismatch::new(describe(ty), value.kind())),
    })
}

fn items_to_wit(items: &[Value], element: &Type) -> Result<Vec<Val>, Mismatch> {
    items.iter().enumerate().map(|(i, item)| to_wit(item, element).map_err(|m| m.at(format_args!("[{i}]")))).collect()
}

/// `{tag, val}`: the tag and the value when present.
fn tagged(value: &Value) -> Option<(&str, Option<&Value>)> {
    match value.get("tag")? {
        Value::String(tag) => Some((tag, value.get("val").filter(|v| !matches!(v, Value::Undefined)))),
        _ => None,
    }
}

/// A whole number of the target type's range, from a number or a bigint.
fn integer<T: TryFrom<i128>>(value: &Value, ty: &Type) -> Result<T, Mismatch> {
    let wide = match value {
        Value::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER => *n as i128,
        Value::Number(n) => {
            return Err(Mismatch::new(describe(ty), format!("number {}", crate::codec::js_number_to_string(*n))));
        }
        Value::BigInt(i) => *i,
        other => return Err(Mismatch::new(describe(ty), other.kind())),
    };
    T::try_from(wide).map_err(|_| Mismatch::new(describe(ty), format!("{wide} (out of range)")))
}
