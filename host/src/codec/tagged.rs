//! The "ezez serialize" text form carried by `j` elements: JSON whose leaf
//! values are tagged strings (`"s:text"`, `"n:1.5"`, `"i:12"`, `"u:"`, `"l:"`,
//! `"b:1"`), byte-compatible with `serialize` / `deserialize` of `@ezez/utils`.

use std::cell::RefCell;
use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{CodecError, Value};

/// Parses one `j` payload.
pub fn decode(text: &str) -> Result<Value, CodecError> {
    // A lone leaf without escapes (event ids, reply ids, numbers, null: most
    // `j` elements) needs no JSON parser.
    if let Some(leaf) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && needs_no_escape(leaf.as_bytes())
    {
        return untag(leaf);
    }
    parse(text)
}

/// Parses a `j` payload as JSON, untagging its leaves on the way.
fn parse(text: &str) -> Result<Value, CodecError> {
    let untag_error = RefCell::new(None);
    let mut json = serde_json::Deserializer::from_str(text);
    let parsed = Tagged(&untag_error).deserialize(&mut json).and_then(|value| json.end().map(|()| value));
    parsed.map_err(|error| untag_error.take().unwrap_or_else(|| CodecError::Json(error.to_string())))
}

/// Writes `value` in the tagged form. Like `@ezez/utils`, the keys of a
/// top-level object are sorted (one level only). Byte buffers, which the form
/// cannot tag, become arrays of numbers.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(entries) => write_object(js_sorted_keys(entries).into_iter(), out),
        other => write(other, out),
    }
}

/// [`encode`] into a new `String`.
#[cfg(test)]
pub fn encode_to_string(value: &Value) -> String {
    let mut out = Vec::new();
    encode(value, &mut out);
    String::from_utf8(out).expect("the tagged form is built from UTF-8 pieces")
}

/// Reads JSON straight into [`Value`]s, leaves untagged on the way: no
/// `serde_json::Value` in between (a record argument of three fields cost
/// ~5k instructions through one, SipHash-keyed maps included). A leaf whose
/// tag is wrong keeps its own error in the cell, and the parse stops there.
#[derive(Clone, Copy)]
struct Tagged<'a>(&'a RefCell<Option<CodecError>>);

impl<'de> DeserializeSeed<'de> for Tagged<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tagged<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value in the ezez tagged form")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    // Untagged leaves are kept as they are, as `JSON.parse` would.
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }

    fn visit_str<E: de::Error>(self, tagged: &str) -> Result<Value, E> {
        untag(tagged).map_err(|error| {
            let message = error.to_string();
            self.0.replace(Some(error));
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

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Undefined => out.extend_from_slice(b"\"u:\""),
        Value::Null => out.extend_from_slice(b"\"l:\""),
        Value::Bool(true) => out.extend_from_slice(b"\"b:1\""),
        Value::Bool(false) => out.extend_from_slice(b"\"b:\""),
        Value::Number(n) => {
            out.extend_from_slice(b"\"n:");
            write_js_number(*n, out);
            out.push(b'"');
        }
        Value::BigInt(i) => {
            out.extend_from_slice(b"\"i:");
            out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            out.push(b'"');
        }
        Value::String(s) => write_json_string("s:", s, out),
        Value::Bytes(bytes) => {
            write_list(b'[', bytes.iter(), b']', out, |byte, out| write(&Value::Number(f64::from(*byte)), out))
        }
        Value::Array(items) => write_list(b'[', items, b']', out, write),
        // Most objects have no integer-like key: their order is as written.
        Value::Object(entries) if entries.iter().all(|(key, _)| array_index(key).is_none()) => {
            write_object(entries.iter(), out)
        }
        Value::Object(entries) => write_object(js_property_order(entries).into_iter(), out),
    }
}

fn write_object<'a>(entries: impl Iterator<Item = &'a (String, Value)>, out: &mut Vec<u8>) {
    write_list(b'{', entries, b'}', out, |(key, value), out| {
        write_json_string("", key, out);
        out.push(b':');
        write(value, out);
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
/// is a plain ASCII tag.
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

/// The order `JSON.stringify` writes an object's keys in: integer-like keys
/// first in numeric order, then the others in insertion order.
fn js_property_order(entries: &[(String, Value)]) -> Vec<&(String, Value)> {
    let mut ordered: Vec<&(String, Value)> = entries.iter().collect();
    ordered.sort_by_key(|(key, _)| array_index(key).unwrap_or(u32::MAX));
    ordered
}

/// `sortProps`: keys sorted as JavaScript sorts strings (by UTF-16 code
/// units), then laid out in JavaScript property order.
fn js_sorted_keys(entries: &[(String, Value)]) -> Vec<&(String, Value)> {
    let mut sorted: Vec<&(String, Value)> = entries.iter().collect();
    sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    sorted.sort_by_key(|(key, _)| array_index(key).unwrap_or(u32::MAX));
    sorted
}

/// A key JavaScript treats as an array index: `0` or `[1-9][0-9]*` below 2^32 - 1.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|i| *i != u32::MAX)
}

/// `String(n)` of JavaScript.
pub fn js_number_to_string(n: f64) -> String {
    let mut out = Vec::new();
    write_js_number(n, &mut out);
    String::from_utf8(out).expect("digits are ASCII")
}

/// `String(n)` of JavaScript, appended. Whole numbers (event ids, counts)
/// take a short path: below 1e21 JavaScript prints them as plain digits,
/// which is what ryu-js does the long way.
fn write_js_number(n: f64, out: &mut Vec<u8>) {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        // `as` is exact for these; -0 prints as 0, as in JavaScript.
        out.extend_from_slice(itoa::Buffer::new().format(n as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu_js::Buffer::new().format(n).as_bytes());
    }
}

/// `Number(text)` of JavaScript: never fails, garbage is NaN.
pub fn js_string_to_number(text: &str) -> f64 {
    let text = text.trim();
    // Event ids: up to 15 digits are exact in an f64 and need no float parser.
    if (1..=15).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.bytes().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')) as f64;
    }
    match text {
        "" => return 0.0,
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    if let Some(n) = radix_literal(text) {
        return n.map_or(f64::NAN, |n| n as f64);
    }
    let decimal_chars = text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    let has_digit = text.bytes().any(|b| b.is_ascii_digit());
    if !decimal_chars || !has_digit {
        return f64::NAN;
    }
    text.parse::<f64>().unwrap_or(f64::NAN)
}

/// `BigInt(text)` of JavaScript, within 128 bits; `None` where it would throw
/// or not fit.
pub fn js_string_to_bigint(text: &str) -> Option<i128> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    if let Some(n) = radix_literal(text) {
        return n.and_then(|n| i128::try_from(n).ok());
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i128>().ok()
}

/// `0x..`, `0o..`, `0b..` literals: `None` if `text` is not one,
/// `Some(None)` if it is one but malformed or too large.
fn radix_literal(text: &str) -> Option<Option<u128>> {
    let bytes = text.as_bytes();
    if bytes.len() < 2 || bytes[0] != b'0' {
        return None;
    }
    let radix = match bytes[1] {
        b'x' | b'X' => 16,
        b'o' | b'O' => 8,
        b'b' | b'B' => 2,
        _ => return None,
    };
    let digits = &text[2..];
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Some(None);
    }
    Some(u128::from_str_radix(digits, radix).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        encode_to_string(&decode(text).unwrap())
    }

    #[test]
    fn leaves_are_tagged_like_ezez_utils() {
        assert_eq!(encode_to_string(&Value::from("hi")), r#""s:hi""#);
        assert_eq!(encode_to_string(&Value::Number(1.0)), r#""n:1""#);
        assert_eq!(encode_to_string(&Value::Number(-0.0)), r#""n:0""#);
        assert_eq!(encode_to_string(&Value::Number(f64::NAN)), r#""n:NaN""#);
        assert_eq!(encode_to_string(&Value::Number(f64::INFINITY)), r#""n:Infinity""#);
        assert_eq!(encode_to_string(&Value::Number(f64::NEG_INFINITY)), r#""n:-Infinity""#);
        assert_eq!(encode_to_string(&Value::Number(1e21)), r#""n:1e+21""#);
        assert_eq!(encode_to_string(&Value::Number(0.1)), r#""n:0.1""#);
        assert_eq!(encode_to_string(&Value::Number(1e-7)), r#""n:1e-7""#);
        assert_eq!(encode_to_string(&Value::BigInt(-12)), r#""i:-12""#);
        assert_eq!(encode_to_string(&Value::Undefined), r#""u:""#);
        assert_eq!(encode_to_string(&Value::Null), r#""l:""#);
        assert_eq!(encode_to_string(&Value::Bool(true)), r#""b:1""#);
        assert_eq!(encode_to_string(&Value::Bool(false)), r#""b:""#);
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
            encode_to_string(&Value::from(s)),
            "\"s:quote\\\" back\\\\ nl\\n tab\\t nul\\u0000 del\u{7f} é 👋\""
        );
        assert_eq!(decode(&encode_to_string(&Value::from(s))).unwrap(), Value::from(s));
    }

    #[test]
    fn lone_leaves_decode_as_the_json_parser_decodes_them() {
        let leaves =
            ["\"n:1\"", "\"l:\"", "\"u:\"", "\"s:plain\"", "\"i:12\"", "\"b:1\"", "\"x:1\"", "\"n:abc\"", "\"\""];
        for text in leaves {
            assert_eq!(format!("{:?}", decode(text)), format!("{:?}", parse(text)), "{text}");
        }
        // Escapes, control characters and anything else go to the parser.
        assert_eq!(decode("\"s:a\\\"b\"").unwrap(), Value::String("a\"b".into()));
        assert!(decode("\"s:a\u{1}\"").is_err());
        assert!(decode(" \"n:1\"").is_ok());
    }

    #[test]
    fn whole_numbers_print_as_ryu_js_prints_them() {
        let samples = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            42.0,
            1e3,
            123456789.0,
            999999999999999.0,
            -999999999999999.0,
            1e15,
            1e20,
            1e21,
            0.5,
            -2.25,
            1e-7,
            f64::NAN,
            f64::INFINITY,
        ];
        for n in samples {
            assert_eq!(js_number_to_string(n), ryu_js::Buffer::new().format(n), "{n}");
        }
    }

    #[test]
    fn numbers_parse_like_javascript() {
        assert_eq!(js_string_to_number(""), 0.0);
        assert_eq!(js_string_to_number(" 12 "), 12.0);
        assert_eq!(js_string_to_number("007"), 7.0);
        assert_eq!(js_string_to_number("999999999999999"), 999_999_999_999_999.0);
        assert_eq!(
            js_string_to_number("9007199254740993"),
            9_007_199_254_740_992.0,
            "past 15 digits: rounded as a float"
        );
        assert_eq!(js_string_to_number("0x10"), 16.0);
        assert_eq!(js_string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert_eq!(js_string_to_number("1e+21"), 1e21);
        assert!(js_string_to_number("NaN").is_nan());
        assert!(js_string_to_number("inf").is_nan());
        assert!(js_string_to_number("12px").is_nan());
        assert!(js_string_to_number("-").is_nan());
    }

    #[test]
    fn bigints_parse_like_javascript_or_fail() {
        assert_eq!(js_string_to_bigint("123"), Some(123));
        assert_eq!(js_string_to_bigint("-9007199254740993"), Some(-9007199254740993));
        assert_eq!(js_string_to_bigint("0x1f"), Some(31));
        assert_eq!(js_string_to_bigint("1.5"), None);
        assert_eq!(js_string_to_bigint("1".repeat(60).as_str()), None);
        assert!(matches!(decode(r#""i:x""#), Err(CodecError::BadBigInt(_))));
    }

    #[test]
    fn untagged_json_leaves_pass_and_unknown_tags_fail() {
        assert_eq!(decode("[1,true,null]").unwrap(), Value::Array(vec![1.0.into(), true.into(), Value::Null]));
        assert!(matches!(decode(r#""d:2020""#), Err(CodecError::UnknownTag(t)) if t == "d"));
        assert!(matches!(decode(r#""plain""#), Err(CodecError::UnknownTag(_))));
        assert!(matches!(decode("{"), Err(CodecError::Json(_))));
        assert_eq!(decode(r#""b:yes""#).unwrap(), Value::Bool(false));
    }

    #[test]
    fn nested_values_parse_as_json_parse_reads_them() {
        let parsed = decode(r#"{"z":"s:last?","a":["n:1",2,{"k":"i:-3"}],"z":"s:last","e":{},"n":"l:"}"#).unwrap();
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
        assert!(matches!(decode(r#"{"a":[["d:1"]]}"#), Err(CodecError::UnknownTag(t)) if t == "d"));
        assert!(matches!(decode(r#"["i:1x"]"#), Err(CodecError::BadBigInt(t)) if t == "1x"));
        assert!(matches!(decode(r#"["n:1"] x"#), Err(CodecError::Json(_))));
        // serde_json's depth limit holds for this reader too: no stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(decode(&deep), Err(CodecError::Json(e)) if e.contains("recursion")));
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
        assert_eq!(encode_to_string(&v), r#"[["n:1","n:255"]]"#);
    }
}
