//! Wire value -> WIT value, checked against the declared type.

use std::fmt;

use wasmtime::component::Val;

use super::layout::{Field, Layout};
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

/// Converts `value` to a WIT value of the type laid out by `layout`, or
/// says why it does not fit.
pub fn to_wit(value: &Value, layout: &Layout) -> Result<Val, Mismatch> {
    let wrong = || Mismatch::new(layout.describe(), value.kind());
    Ok(match layout {
        Layout::Bool => match value {
            Value::Bool(b) => Val::Bool(*b),
            _ => return Err(wrong()),
        },
        Layout::S8 => Val::S8(integer(value, layout)?),
        Layout::U8 => Val::U8(integer(value, layout)?),
        Layout::S16 => Val::S16(integer(value, layout)?),
        Layout::U16 => Val::U16(integer(value, layout)?),
        Layout::S32 => Val::S32(integer(value, layout)?),
        Layout::U32 => Val::U32(integer(value, layout)?),
        Layout::S64 => Val::S64(integer(value, layout)?),
        Layout::U64 => Val::U64(integer(value, layout)?),
        Layout::F32 => match value {
            Value::Number(n) => Val::Float32(*n as f32),
            _ => return Err(wrong()),
        },
        Layout::F64 => match value {
            Value::Number(n) => Val::Float64(*n),
            _ => return Err(wrong()),
        },
        Layout::Char => match value {
            Value::String(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Val::Char(c),
                    _ => {
                        let got = format!("string of {} characters", s.chars().count());
                        return Err(Mismatch::new(layout.describe(), got));
                    }
                }
            }
            _ => return Err(wrong()),
        },
        Layout::String => match value {
            Value::String(s) => Val::String(s.clone()),
            _ => return Err(wrong()),
        },
        Layout::Bytes => match value {
            Value::Bytes(bytes) => Val::List(bytes.iter().map(|b| Val::U8(*b)).collect()),
            Value::Array(items) => Val::List(items_to_wit(items, &Layout::U8)?),
            _ => return Err(wrong()),
        },
        Layout::List(element) => match value {
            Value::Array(items) => Val::List(items_to_wit(items, element)?),
            _ => return Err(wrong()),
        },
        Layout::FixedList(element, len) => match value {
            Value::Array(items) if items.len() == *len => Val::FixedLengthList(items_to_wit(items, element)?),
            Value::Array(items) => {
                return Err(Mismatch::new(layout.describe(), format!("array of {} items", items.len())));
            }
            _ => return Err(wrong()),
        },
        Layout::Tuple(layouts) => match value {
            Value::Array(items) if items.len() == layouts.len() => Val::Tuple(
                items
                    .iter()
                    .zip(layouts)
                    .enumerate()
                    .map(|(i, (item, layout))| to_wit(item, layout).map_err(|m| m.at(format_args!("[{i}]"))))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Array(items) => {
                return Err(Mismatch::new(layout.describe(), format!("array of {} items", items.len())));
            }
            _ => return Err(wrong()),
        },
        Layout::Record(fields) => {
            let Value::Object(entries) = value else { return Err(wrong()) };
            if let Some((key, _)) = entries.iter().find(|(key, _)| !fields.iter().any(|f| f.name.wire == *key)) {
                return Err(Mismatch::new("no such field", "a value").at(format_args!(".{key}")));
            }
            let mut vals = Vec::with_capacity(fields.len());
            for Field { name, layout } in fields {
                let val = match (value.get(&name.wire), layout) {
                    (None, Layout::Option(_)) => Val::Option(None),
                    (None, _) => {
                        let expected = layout.describe();
                        return Err(
                            Mismatch::new(expected, "nothing (missing field)").at(format_args!(".{}", name.wire))
                        );
                    }
                    (Some(v), _) => to_wit(v, layout).map_err(|m| m.at(format_args!(".{}", name.wire)))?,
                };
                vals.push((name.wit.clone(), val));
            }
            Val::Record(vals)
        }
        Layout::Variant(cases) => {
            let (tag, payload) = tagged(value).ok_or_else(wrong)?;
            let case = cases
                .iter()
                .find(|c| c.name == tag)
                .ok_or_else(|| Mismatch::new(layout.describe(), format!("tag {tag:?}")))?;
            let payload = match (&case.payload, payload) {
                (None, _) => None,
                (Some(layout), Some(v)) => Some(Box::new(to_wit(v, layout).map_err(|m| m.at(".val"))?)),
                (Some(layout), None) => return Err(Mismatch::new(layout.describe(), "nothing").at(".val")),
            };
            Val::Variant(case.name.clone(), payload)
        }
        Layout::Enum(names) => match value {
            Value::String(s) if names.contains(s) => Val::Enum(s.clone()),
            Value::String(s) => return Err(Mismatch::new(layout.describe(), format!("{s:?}"))),
            _ => return Err(wrong()),
        },
        Layout::Flags(names) => {
            let Value::Object(entries) = value else { return Err(wrong()) };
            let mut set = Vec::new();
            for (key, v) in entries {
                let Some(name) = names.iter().find(|n| n.wire == *key) else {
                    return Err(Mismatch::new("no such flag", "a value").at(format_args!(".{key}")));
                };
                match v {
                    Value::Bool(true) => set.push(name.wit.clone()),
                    Value::Bool(false) | Value::Null | Value::Undefined => {}
                    other => return Err(Mismatch::new("boolean", other.kind()).at(format_args!(".{key}"))),
                }
            }
            Val::Flags(set)
        }
        Layout::Option(inner) => {
            if value.is_nullish() {
                Val::Option(None)
            } else if let Layout::Option(_) = **inner {
                match tagged(value) {
                    Some(("none", _)) => Val::Option(None),
                    Some(("some", Some(v))) => Val::Option(Some(Box::new(to_wit(v, inner).map_err(|m| m.at(".val"))?))),
                    _ => return Err(Mismatch::new("null or {tag: \"some\" | \"none\", val}", value.kind())),
                }
            } else {
                // At the top, say "T or null" rather than just "T".
                let inner_val = to_wit(value, inner)
                    .map_err(|m| if m.path.is_empty() { Mismatch::new(layout.describe(), m.got) } else { m })?;
                Val::Option(Some(Box::new(inner_val)))
            }
        }
        Layout::Result { ok, err } => {
            let (tag, payload) = tagged(value).ok_or_else(wrong)?;
            let side = match tag {
                "ok" => ok,
                "err" => err,
                other => return Err(Mismatch::new(layout.describe(), format!("tag {other:?}"))),
            };
            let payload = match (side, payload) {
                (None, _) => None,
                (Some(layout), Some(v)) => Some(Box::new(to_wit(v, layout).map_err(|m| m.at(".val"))?)),
                (Some(layout), None) => return Err(Mismatch::new(layout.describe(), "nothing").at(".val")),
            };
            Val::Result(if tag == "ok" { Ok(payload) } else { Err(payload) })
        }
    })
}

fn items_to_wit(items: &[Value], element: &Layout) -> Result<Vec<Val>, Mismatch> {
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
fn integer<T: TryFrom<i128>>(value: &Value, layout: &Layout) -> Result<T, Mismatch> {
    let wide = match value {
        Value::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER => *n as i128,
        Value::Number(n) => {
            return Err(Mismatch::new(layout.describe(), format!("number {}", crate::codec::js_number_to_string(*n))));
        }
        Value::BigInt(i) => *i,
        other => return Err(Mismatch::new(layout.describe(), other.kind())),
    };
    T::try_from(wide).map_err(|_| Mismatch::new(layout.describe(), format!("{wide} (out of range)")))
}
