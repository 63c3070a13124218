//! JavaScript's own rules where the codecs must agree with it byte for
//! byte: numbers and bigints to and from text (`String(n)`, `Number(text)`,
//! `BigInt(text)`) and the order `JSON.stringify` writes an object's keys in.

use super::Value;

/// The order `JSON.stringify` writes an object's keys in: integer-like keys
/// first in numeric order, then the others in insertion order.
pub(super) fn js_property_order(entries: &[(String, Value)]) -> Vec<&(String, Value)> {
    integer_keys_first(entries.iter().collect())
}

/// `sortProps`: keys sorted as JavaScript sorts strings (by UTF-16 code
/// units), then laid out in JavaScript property order.
pub(super) fn js_sorted_keys(entries: &[(String, Value)]) -> Vec<&(String, Value)> {
    let mut sorted: Vec<&(String, Value)> = entries.iter().collect();
    sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    integer_keys_first(sorted)
}

/// JavaScript's property order over `entries` as they are ordered now: the
/// integer-like keys moved to the front in numeric order, the others kept
/// where they stand (the sort is stable).
fn integer_keys_first(mut entries: Vec<&(String, Value)>) -> Vec<&(String, Value)> {
    entries.sort_by_key(|(key, _)| array_index(key).unwrap_or(u32::MAX));
    entries
}

/// A key JavaScript treats as an array index: `0` or `[1-9][0-9]*` below 2^32 - 1.
pub(super) fn array_index(key: &str) -> Option<u32> {
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
pub(super) fn write_js_number(n: f64, out: &mut Vec<u8>) {
    match whole(n) {
        Some(whole) => out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes()),
        None => out.extend_from_slice(ryu_js::Buffer::new().format(n).as_bytes()),
    }
}

/// `n` as an integer when JavaScript prints it as one in plain digits (a
/// whole number below 1e15, where `as` is exact; -0 is 0, as it prints).
pub(super) fn whole(n: f64) -> Option<i64> {
    (n.fract() == 0.0 && n.abs() < 1e15).then_some(n as i64)
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
    }
}
