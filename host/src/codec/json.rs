//! Values as JSON, in the two forms the protocol carries. One reader and one
//! writer serve both: the forms differ only at the leaves.
//!
//! - **Plain** ([`decode_frame`], [`encode_frame`]): the text codec. One
//!   text frame holds a JSON array `[name, eventId, replyTo, ...args]`, so a
//!   browser or `websocat` can talk to a handler with no client library.
//!   Values are written as `JSON.stringify` writes them: undefined as null
//!   (and left out of objects), NaN and the infinities as null, byte buffers
//!   as arrays of numbers. Integers beyond 2^53 are kept exact both ways, as
//!   bigints, where JavaScript would round them: all of WIT's (`u64`, `s64`).
//!   Beyond 64 bits the parser reads a float, as JavaScript does.
//! - **Tagged** ([`decode_tagged`], [`encode_tagged`]): the "ezez serialize"
//!   text form of `j` elements. Every leaf is a tagged string (`"s:text"`,
//!   `"n:1.5"`, `"i:12"`, `"u:"`, `"l:"`, `"b:1"`), byte-compatible with
//!   `serialize` / `deserialize` of `@ezez/utils`.

use std::cell::RefCell;
use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::js::{
    array_index, js_property_order, js_sorted_keys, js_string_to_bigint, js_string_to_number, write_js_number,
};
use super::{CodecError, Value};

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// The two forms of JSON the protocol carries (see the module's docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    Tagged,
}

/// Parses a text frame into its values.
pub fn decode_frame(text: &str) -> Result<Vec<Value>, CodecError> {
    match parse(text, Form::Plain)? {
        Value::Array(items) => Ok(items),
        _ => Err(CodecError::NotAMessage("a JSON text frame must hold an array".into())),
    }
}

/// Writes values as the JSON array of a text frame.
pub fn encode_frame<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = Vec::new();
    write_list(b'[', values, b']', &mut out, |value, out| write(value, Form::Plain, out));
    String::from_utf8(out).expect("JSON is built from UTF-8 pieces")
}

/// Parses one `j` payload.
pub fn decode_tagged(text: &str) -> Result<Value, CodecError> {
    // A lone leaf without escapes (event ids, reply ids, numbers, null: most
    // `j` elements) needs no JSON parser.
    if let Some(leaf) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && needs_no_escape(leaf.as_bytes())
    {
        return untag(leaf);
    }
    parse(text, Form::Tagged)
}

/// Writes `value` in the tagged form. Like `@ezez/utils`, the keys of a
/// top-level object are sorted (one level only). Byte buffers, which the form
/// cannot tag, become arrays of numbers.
pub fn encode_tagged(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(entries) => write_object(js_sorted_keys(entries).into_iter(), Form::Tagged, out),
        other => write(other, Form::Tagged, out),
    }
}

/// [`encode_tagged`] into a new `String`.
#[cfg(test)]
fn encode_tagged_to_string(value: &Value) -> String {
    let mut out = Vec::new();
    encode_tagged(value, &mut out);
    String::from_utf8(out).expect("JSON is built from UTF-8 pieces")
}

/// Parses `text` as JSON in `form`, leaves untagged on the way if tagged.
fn parse(text: &str, form: Form) -> Result<Value, CodecError> {
    let untag_error = RefCell::new(None);
    let mut json = serde_json::Deserializer::from_str(text);
    let reader = Reader { form, untag_error: &untag_error };
    let parsed = reader.deserialize(&mut json).and_then(|value| json.end().map(|()| value));
    parsed.map_err(|error| untag_error.take().unwrap_or_else(|| CodecError::Json(error.to_string())))
}

/// Reads JSON straight into [`Value`]s: no `serde_json::Value` in between (a
/// record argument of three fields cost ~5k instructions through one,
/// SipHash-keyed maps included). A tagged leaf whose tag is wrong keeps its
/// own error in the cell, and the parse stops there.
#[derive(Clone, Copy)]
struct Reader<'a> {
    form: Form,
    untag_error: &'a RefCell<Option<CodecError>>,
}

impl Reader<'_> {
    /// A JSON integer: exact as a bigint in the plain form where a number
    /// would round it; in the tagged form a plain number, as `JSON.parse`
    /// reads an untagged leaf.
    fn integer(self, n: i128) -> Value {
        match self.form {
            Form::Plain if n.unsigned_abs() > u128::from(MAX_SAFE_INTEGER) => Value::BigInt(n),
            _ => Value::Number(n as f64),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Reader<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reader<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(self.integer(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(self.integer(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        if self.form == Form::Plain {
            return Ok(Value::String(text.to_owned()));
        }
        untag(text).map_err(|error| {
            let message = error.to_string();
            self.untag_error.replace(Some(error));
            E::custom(message)
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    /// A key written twice keeps its first place and its last value, as
    /// `JSON.parse` does.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: IndexMap<String, Value, foldhash::fast::RandomState> = IndexMap::default();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            entries.insert(key, value);
        }
        Ok(Value::Object(entries.into_iter().collect()))
    }
}

fn untag(tagged: &str) -> Result<Value, CodecError> {
    if let Some(text) = tagged.strip_prefix("s:") {
        return Ok(Value::String(text.to_owned()));
    }
    if let Some(text) = tagged.strip_prefix("n:") {
        return Ok(Value::Number(js_string_to_number(text)));
    }
    if let Some(text) = tagged.strip_prefix("i:") {
        return js_string_to_bigint(text).map(Value::BigInt).ok_or_else(|| CodecError::BadBigInt(text.to_owned()));
    }
    match tagged {
        "u:" => return Ok(Value::Undefined),
        "l:" => return Ok(Value::Null),
        _ => {}
    }
    if let Some(flag) = tagged.strip_prefix("b:") {
        return Ok(Value::Bool(flag == "1"));
    }
    let tag = tagged.split_once(':').map_or(tagged, |(tag, _)| tag);
    Err(CodecError::UnknownTag(tag.chars().take(32).collect()))
}

fn write(value: &Value, form: Form, out: &mut Vec<u8>) {
    let digits = |i: &i128, out: &mut Vec<u8>| out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
    match (value, form) {
        (Value::Undefined | Value::Null, Form::Plain) => out.extend_from_slice(b"null"),
        (Value::Undefined, Form::Tagged) => out.extend_from_slice(b"\"u:\""),
        (Value::Null, Form::Tagged) => out.extend_from_slice(b"\"l:\""),
        (Value::Bool(true), Form::Plain) => out.extend_from_slice(b"true"),
        (Value::Bool(false), Form::Plain) => out.extend_from_slice(b"false"),
        (Value::Bool(true), Form::Tagged) => out.extend_from_slice(b"\"b:1\""),
        (Value::Bool(false), Form::Tagged) => out.extend_from_slice(b"\"b:\""),
        (Value::Number(n), Form::Plain) if !n.is_finite() => out.extend_from_slice(b"null"),
        (Value::Number(n), Form::Plain) => write_js_number(*n, out),
        (Value::Number(n), Form::Tagged) => write_tagged(b"n:", out, |out| write_js_number(*n, out)),
        (Value::BigInt(i), Form::Plain) => digits(i, out),
        (Value::BigInt(i), Form::Tagged) => write_tagged(b"i:", out, |out| digits(i, out)),
        (Value::String(s), Form::Plain) => write_json_string("", s, out),
        (Value::String(s), Form::Tagged) => write_json_string("s:", s, out),
        (Value::Bytes(bytes), _) => {
            write_list(b'[', bytes.iter(), b']', out, |byte, out| write(&Value::Number(f64::from(*byte)), form, out))
        }
        (Value::Array(items), _) => write_list(b'[', items, b']', out, |item, out| write(item, form, out)),
        // Most objects have no integer-like key: their order is as written.
        (Value::Object(entries), _) if entries.iter().all(|(key, _)| array_index(key).is_none()) => {
            write_object(entries.iter(), form, out)
        }
        (Value::Object(entries), _) => write_object(js_property_order(entries).into_iter(), form, out),
    }
}

/// A tagged leaf: `"`, the tag, what `text` writes, `"`.
fn write_tagged(tag: &[u8], out: &mut Vec<u8>, text: impl FnOnce(&mut Vec<u8>)) {
    out.push(b'"');
    out.extend_from_slice(tag);
    text(out);
    out.push(b'"');
}

/// An object of `entries`, in the order given. The plain form leaves out
/// undefined values, as `JSON.stringify` does.
fn write_object<'a>(entries: impl Iterator<Item = &'a (String, Value)>, form: Form, out: &mut Vec<u8>) {
    let written = entries.filter(|(_, value)| form == Form::Tagged || *value != Value::Undefined);
    write_list(b'{', written, b'}', out, |(key, value), out| {
        write_json_string("", key, out);
        out.push(b':');
        write(value, form, out);
    });
}

/// `open`, each item as `each` writes it, separated by commas, `close`.
fn write_list<T>(
    open: u8,
    items: impl IntoIterator<Item = T>,
    close: u8,
    out: &mut Vec<u8>,
    mut each: impl FnMut(T, &mut Vec<u8>),
) {
    out.push(open);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(item, out);
    }
    out.push(close);
}

/// Whether `bytes` go into a JSON string literal as they are: no `"`, `\`
/// or control character to escape.
fn needs_no_escape(bytes: &[u8]) -> bool {
    !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A JSON string literal of `prefix + text`, escaped exactly as
/// `JSON.stringify` (and serde_json) escape: `"`, `\` and the control
/// characters, the common ones by letter, the rest as `\u00xx`. The prefix
/// is a plain ASCII tag, or empty.
fn write_json_string(prefix: &str, text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    out.reserve(prefix.len() + bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(prefix.as_bytes());
    if needs_no_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut plain = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        encode_tagged_to_string(&decode_tagged(text).unwrap())
    }

    #[test]
    fn leaves_are_tagged_like_ezez_utils() {
        assert_eq!(encode_tagged_to_string(&Value::from("hi")), r#""s:hi""#);
        assert_eq!(encode_tagged_to_string(&Value::Number(1.0)), r#""n:1""#);
        assert_eq!(encode_tagged_to_string(&Value::Number(-0.0)), r#""n:0""#);
        assert_eq!(encode_tagged_to_string(&Value::Number(f64::NAN)), r#""n:NaN""#);
        assert_eq!(encode_tagged_to_string(&Value::Number(f64::INFINITY)), r#""n:Infinity""#);
        assert_eq!(encode_tagged_to_string(&Value::Number(f64::NEG_INFINITY)), r#""n:-Infinity""#);
        assert_eq!(encode_tagged_to_string(&Value::Number(1e21)), r#""n:1e+21""#);
        assert_eq!(encode_tagged_to_string(&Value::Number(0.1)), r#""n:0.1""#);
        assert_eq!(encode_tagged_to_string(&Value::Number(1e-7)), r#""n:1e-7""#);
        assert_eq!(encode_tagged_to_string(&Value::BigInt(-12)), r#""i:-12""#);
        assert_eq!(encode_tagged_to_string(&Value::Undefined), r#""u:""#);
        assert_eq!(encode_tagged_to_string(&Value::Null), r#""l:""#);
        assert_eq!(encode_tagged_to_string(&Value::Bool(true)), r#""b:1""#);
        assert_eq!(encode_tagged_to_string(&Value::Bool(false)), r#""b:""#);
    }

    #[test]
    fn only_the_top_level_object_is_sorted() {
        assert_eq!(
            roundtrip(r#"{"b":{"z":"n:1","a":"n:2"},"a":["b:1","u:","l:"]}"#),
            r#"{"a":["b:1","u:","l:"],"b":{"z":"n:1","a":"n:2"}}"#
        );
        // JavaScript puts integer-like keys first, in numeric order.
        assert_eq!(roundtrip(r#"{"b":"l:","10":"l:","2":"l:"}"#), r#"{"2":"l:","10":"l:","b":"l:"}"#);
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let s = "quote\" back\\ nl\n tab\t nul\u{0} del\u{7f} é 👋";
        assert_eq!(
            encode_tagged_to_string(&Value::from(s)),
            "\"s:quote\\\" back\\\\ nl\\n tab\\t nul\\u0000 del\u{7f} é 👋\""
        );
        assert_eq!(decode_tagged(&encode_tagged_to_string(&Value::from(s))).unwrap(), Value::from(s));
    }

    #[test]
    fn lone_leaves_decode_as_the_json_parser_decodes_them() {
        let leaves =
            ["\"n:1\"", "\"l:\"", "\"u:\"", "\"s:plain\"", "\"i:12\"", "\"b:1\"", "\"x:1\"", "\"n:abc\"", "\"\""];
        for text in leaves {
            assert_eq!(format!("{:?}", decode_tagged(text)), format!("{:?}", parse(text, Form::Tagged)), "{text}");
        }
        // Escapes, control characters and anything else go to the parser.
        assert_eq!(decode_tagged("\"s:a\\\"b\"").unwrap(), Value::String("a\"b".into()));
        assert!(decode_tagged("\"s:a\u{1}\"").is_err());
        assert!(decode_tagged(" \"n:1\"").is_ok());
    }

    #[test]
    fn untagged_json_leaves_pass_and_unknown_tags_fail() {
        assert_eq!(decode_tagged("[1,true,null]").unwrap(), Value::Array(vec![1.0.into(), true.into(), Value::Null]));
        assert!(matches!(decode_tagged(r#""d:2020""#), Err(CodecError::UnknownTag(t)) if t == "d"));
        assert!(matches!(decode_tagged(r#""plain""#), Err(CodecError::UnknownTag(_))));
        assert!(matches!(decode_tagged("{"), Err(CodecError::Json(_))));
        assert_eq!(decode_tagged(r#""b:yes""#).unwrap(), Value::Bool(false));
    }

    #[test]
    fn nested_values_parse_as_json_parse_reads_them() {
        let parsed =
            decode_tagged(r#"{"z":"s:last?","a":["n:1",2,{"k":"i:-3"}],"z":"s:last","e":{},"n":"l:"}"#).unwrap();
        let Value::Object(entries) = &parsed else { panic!("{parsed:?}") };
        // A repeated key keeps its first place and its last value.
        let keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["z", "a", "e", "n"]);
        assert_eq!(parsed.get("z"), Some(&Value::from("last")));
        let inner = Value::Object(vec![("k".into(), Value::BigInt(-3))]);
        assert_eq!(parsed.get("a"), Some(&Value::Array(vec![1.0.into(), 2.0.into(), inner])));
        assert_eq!(parsed.get("e"), Some(&Value::Object(Vec::new())));
        assert_eq!(parsed.get("n"), Some(&Value::Null));
        // A bad leaf deep inside is reported as itself, not as a JSON error.
        assert!(matches!(decode_tagged(r#"{"a":[["d:1"]]}"#), Err(CodecError::UnknownTag(t)) if t == "d"));
        assert!(matches!(decode_tagged(r#"["i:1x"]"#), Err(CodecError::BadBigInt(t)) if t == "1x"));
        assert!(matches!(decode_tagged(r#"["n:1"] x"#), Err(CodecError::Json(_))));
        // serde_json's depth limit holds for this reader too: no stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(decode_tagged(&deep), Err(CodecError::Json(e)) if e.contains("recursion")));
    }

    #[test]
    fn every_string_escapes_as_serde_json_does() {
        let mut texts: Vec<String> = (0u8..0x80).map(|b| format!("a{}b", b as char)).collect();
        texts.extend(["", "plain", "\u{7f}\u{80}é\u{2028}😀", "\"\\\n\u{1}"].map(String::from));
        for text in texts {
            let mut ours = Vec::new();
            write_json_string("s:", &text, &mut ours);
            let theirs = serde_json::to_string(&format!("s:{text}")).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), theirs, "{text:?}");
        }
    }

    #[test]
    fn nested_bytes_become_arrays_of_numbers() {
        let v = Value::Array(vec![Value::Bytes(bytes::Bytes::from_static(&[1, 255]))]);
        assert_eq!(encode_tagged_to_string(&v), r#"[["n:1","n:255"]]"#);
    }

    #[test]
    fn plain_json_both_ways() {
        let text = r#"["say",1,null,"lobby",{"n":2.5,"ok":true},[1,2]]"#;
        let values = decode_frame(text).unwrap();
        assert_eq!(values[1], Value::Number(1.0));
        assert_eq!(encode_frame(&values), text);
    }

    #[test]
    fn plain_integers_beyond_2_pow_53_stay_exact() {
        let values = decode_frame("[18446744073709551615,-9007199254740993,9007199254740991]").unwrap();
        assert_eq!(
            values,
            vec![Value::BigInt(u64::MAX.into()), Value::BigInt(-9007199254740993), Value::Number(9007199254740991.0)]
        );
        assert_eq!(encode_frame(&values), "[18446744073709551615,-9007199254740993,9007199254740991]");
        // Past 64 bits, a float, as `JSON.parse` reads it.
        assert_eq!(decode_frame("[1180591620717411303424]").unwrap(), vec![Value::Number(2f64.powi(70))]);
    }

    #[test]
    fn plain_values_are_written_as_json_stringify_writes_them() {
        let values = [
            Value::Number(1e20),
            Value::Number(-1e20),
            Value::Number(1e21),
            Value::Number(0.1),
            Value::Number(-0.0),
            Value::Number(f64::NAN),
            Value::Number(f64::NEG_INFINITY),
            Value::Undefined,
            Value::Bytes(bytes::Bytes::from_static(&[0, 255])),
            Value::Object(vec![
                ("b".into(), Value::Bool(true)),
                ("10".into(), Value::Undefined),
                ("2".into(), "two".into()),
                ("a".into(), Value::Array(vec![Value::Undefined, Value::Bool(false)])),
            ]),
        ];
        // What Node.js prints for `JSON.stringify` of the same values (with
        // the byte buffer as a plain array).
        let node = r#"[100000000000000000000,-100000000000000000000,1e+21,0.1,0,null,null,null,[0,255],{"2":"two","b":true,"a":[null,false]}]"#;
        assert_eq!(encode_frame(&values), node);
    }

    #[test]
    fn plain_strings_stay_strings_whatever_they_look_like() {
        let values = decode_frame(r#"["s:x","n:1","u:","\u00e9\n"]"#).unwrap();
        assert_eq!(values, ["s:x", "n:1", "u:", "é\n"].map(Value::from));
    }

    #[test]
    fn non_arrays_and_garbage_fail() {
        assert!(matches!(decode_frame("{}"), Err(CodecError::NotAMessage(_))));
        assert!(matches!(decode_frame("[1,"), Err(CodecError::Json(_))));
        assert!(matches!(decode_frame("[1] 2"), Err(CodecError::Json(_))));
    }
}
