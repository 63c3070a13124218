//! Wire values <-> WIT values, directed by the handler's declared types.
//!
//! The mapping follows the JavaScript conventions of the component-model
//! tooling (jco), so the values a TypeScript client sends are the values a
//! TypeScript guest would see:
//!
//! | WIT | wire (JavaScript) |
//! |---|---|
//! | `bool` | boolean |
//! | `s8` .. `u32` | number, whole and in range (a bigint in range is accepted) |
//! | `s64`, `u64` | bigint; a whole number up to 2^53 is accepted |
//! | `f32`, `f64` | number (NaN and infinities included) |
//! | `char` | string of one character |
//! | `string` | string (an `f` element when it is a whole argument) |
//! | `list<u8>` | bytes (a `t` element; nested, an array of numbers); an array of numbers is accepted |
//! | `list<T>`, `list<T, N>` | array |
//! | `tuple<..>` | array of exactly that length |
//! | `record` | object; field names in lowerCamelCase; a missing `option` field is none; unknown keys are refused |
//! | `variant` | `{tag, val}`, `tag` the case name as written in WIT; no `val` for a case without payload |
//! | `enum` | the case name as a string |
//! | `flags` | object of booleans keyed by lowerCamelCase flag names (missing = false) |
//! | `option<T>` | the value, or null (undefined accepted); `option<option<T>>` nests as `{tag: "some" \| "none", val}` |
//! | `result<T, E>` | `{tag: "ok" \| "err", val}` |
//!
//! Event names and record fields are kebab-case in WIT and lowerCamelCase on
//! the wire (`echo-bytes` is `echoBytes`). Resources, maps, futures and streams
//! cannot cross the wire: a handler using them in an event is refused at load.

mod from_wit;
mod to_wit;

pub use from_wit::from_wit;
pub use to_wit::{Mismatch, to_wit};

use heck::ToLowerCamelCase;
use wasmtime::component::types::Type;

/// The wire name of a WIT name: `echo-bytes` -> `echoBytes`. Record fields
/// are renamed on every value that crosses, so the common shape (lowercase
/// words and hyphens) is done by hand; heck does the rest (acronyms, digits).
pub fn wire_name(wit_name: &str) -> String {
    if !wit_name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') || wit_name.contains("--") {
        return wit_name.to_lower_camel_case();
    }
    let mut name = String::with_capacity(wit_name.len());
    for (i, word) in wit_name.split('-').filter(|w| !w.is_empty()).enumerate() {
        let mut chars = word.chars();
        if i > 0
            && let Some(first) = chars.next()
        {
            name.push(first.to_ascii_uppercase());
        }
        name.push_str(chars.as_str());
    }
    name
}

/// Whether values of `ty` can cross the wire; the reason when not.
pub fn check_supported(ty: &Type) -> Result<(), String> {
    match ty {
        Type::List(list) => check_supported(&list.ty()),
        Type::FixedLengthList(list) => check_supported(&list.ty()),
        Type::Record(record) => record.fields().try_for_each(|f| check_supported(&f.ty)),
        Type::Tuple(tuple) => tuple.types().try_for_each(|t| check_supported(&t)),
        Type::Variant(variant) => variant.cases().filter_map(|c| c.ty).try_for_each(|t| check_supported(&t)),
        Type::Option(option) => check_supported(&option.ty()),
        Type::Result(result) => result.ok().into_iter().chain(result.err()).try_for_each(|t| check_supported(&t)),
        Type::Map(_) => Err("map types cannot cross the wire yet".into()),
        Type::Own(_) | Type::Borrow(_) => Err("resources cannot cross the wire".into()),
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            Err("futures, streams and error contexts cannot cross the wire".into())
        }
        _ => Ok(()),
    }
}

/// A short description of a WIT type, for error messages.
pub fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "boolean".into(),
        Type::S8 => "integer in -128..=127 (s8)".into(),
        Type::U8 => "integer in 0..=255 (u8)".into(),
        Type::S16 => "integer in -32768..=32767 (s16)".into(),
        Type::U16 => "integer in 0..=65535 (u16)".into(),
        Type::S32 => "integer in -2147483648..=2147483647 (s32)".into(),
        Type::U32 => "integer in 0..=4294967295 (u32)".into(),
        Type::S64 => "64-bit signed integer (s64)".into(),
        Type::U64 => "64-bit unsigned integer (u64)".into(),
        Type::Float32 | Type::Float64 => "number".into(),
        Type::Char => "string of one character (char)".into(),
        Type::String => "string".into(),
        Type::List(list) if list.ty() == Type::U8 => "bytes".into(),
        Type::List(_) => "array".into(),
        Type::FixedLengthList(list) => format!("array of {} items", list.len()),
        Type::Tuple(tuple) => format!("array of {} items", tuple.types().len()),
        Type::Record(_) | Type::Flags(_) => "object".into(),
        Type::Variant(variant) => {
            let tags: Vec<_> = variant.cases().map(|c| format!("{:?}", c.name)).collect();
            format!("{{tag, val}} with tag one of {}", tags.join(", "))
        }
        Type::Enum(e) => {
            let names: Vec<_> = e.names().map(|n| format!("{n:?}")).collect();
            format!("one of {}", names.join(", "))
        }
        Type::Option(option) => format!("{} or null", describe(&option.ty())),
        Type::Result(_) => "{tag: \"ok\" | \"err\", val}".into(),
        _ => "value of an unsupported type".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_heck_whichever_path_makes_them() {
        let names = ["echo", "echo-bytes", "long-label", "exec-all", "a-b-c", "HTTP-request", "v2-name", "x1", "url"];
        for name in names {
            assert_eq!(wire_name(name), name.to_lower_camel_case(), "{name}");
        }
    }
}
