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
//!
//! The conversions walk a [`Layout`] of each declared type, made once when the
//! handler loads, not wasmtime's `Type`.

mod from_wit;
mod layout;
mod to_wit;

pub use from_wit::{bytes_of, from_wit};
pub use layout::{Case, Field, Layout, Name};
pub use to_wit::{Mismatch, to_wit};

use heck::ToLowerCamelCase;

/// The wire name of a WIT name: `echo-bytes` -> `echoBytes`. Made when a
/// handler loads (see [`Layout`]), so heck's rules are kept as they are.
pub fn wire_name(wit_name: &str) -> String {
    wit_name.to_lower_camel_case()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_lower_camel_case() {
        let names = [("echo", "echo"), ("echo-bytes", "echoBytes"), ("exec-all", "execAll"), ("a-b-c", "aBC")];
        for (wit, wire) in names {
            assert_eq!(wire_name(wit), wire, "{wit}");
        }
    }
}
