//! The binary element framing of `serializeToBuffer` / `unserializeFromBuffer`:
//! `<length><mark> 0x00 <payload> 0x00`, repeated. Strings travel as `f`, byte
//! buffers as `t`, everything else as `j` (the tagged form).

use bytes::Bytes;

use super::{CodecError, Value, js, json};

/// How the tagged form opens a number: `"n:1"`.
const TAGGED_NUMBER: &[u8] = b"\"n:";

/// Splits a binary frame into its values. Total: any input gives values or an
/// error. Byte payloads share `frame`'s memory.
pub fn decode(frame: &Bytes) -> Result<Vec<Value>, CodecError> {
    if frame.is_empty() {
        return Err(CodecError::Empty);
    }
    let mut values = Vec::new();
    let mut pos = 0;
    while pos < frame.len() {
        let rest = &frame[pos..];
        let header_len = rest.iter().position(|&b| b == 0).ok_or(CodecError::NoHeaderEnd)?;
        let header = &rest[..header_len];
        let (&mark, digits) = header.split_last().ok_or(CodecError::BadLength(String::new()))?;
        let len = parse_length(digits)?;
        let start = pos + header_len + 1;
        let end = start
            .checked_add(len)
            .filter(|end| *end < frame.len())
            .ok_or(CodecError::Truncated { wanted: len, left: frame.len().saturating_sub(start) })?;
        if frame[end] != 0 {
            return Err(CodecError::MissingSeparator);
        }
        let payload = &frame[start..end];
        values.push(match mark {
            b'f' => Value::String(utf8(payload)?.to_owned()),
            b't' => Value::Bytes(frame.slice(start..end)),
            b'j' => json::decode_tagged(utf8(payload)?)?,
            other => return Err(CodecError::UnknownMark(char::from(other))),
        });
        pos = end + 1;
    }
    Ok(values)
}

/// Appends one value as an element.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(s) => push_element(b'f', s.as_bytes(), out),
        Value::Bytes(b) => push_element(b't', b, out),
        // Event ids, written twice a reply (its id, what it answers): their
        // length is known before they are, so they need no rotation.
        &Value::Number(n) if let Some(whole) = js::whole(n) => {
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(whole).as_bytes();
            push_header(b'j', digits.len() + TAGGED_NUMBER.len() + 1, out);
            out.extend_from_slice(TAGGED_NUMBER);
            out.extend_from_slice(digits);
            out.extend_from_slice(b"\"\0");
        }
        other => {
            // Encoded in place, its header (which needs its length) written
            // after it and rotated to the front: no buffer of its own for
            // every id and number.
            let start = out.len();
            json::encode_tagged(other, out);
            let len = out.len() - start;
            push_header(b'j', len, out);
            let header = out.len() - start - len;
            out[start..].rotate_right(header);
            out.push(0);
        }
    }
}

/// Encodes values as one frame, in one allocation when the values' size
/// hints hold (strings and bytes exactly, other values roughly).
pub fn encode<'a, I>(values: I) -> Vec<u8>
where
    I: IntoIterator<Item = &'a Value>,
    I::IntoIter: Clone,
{
    let values = values.into_iter();
    let mut out = Vec::with_capacity(values.clone().map(|v| v.size_hint() + ELEMENT_HEADER).sum());
    for value in values {
        encode_value(value, &mut out);
    }
    out
}

/// Room for an element's length digits, mark and two NULs.
const ELEMENT_HEADER: usize = 24;

fn push_element(mark: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + ELEMENT_HEADER);
    push_header(mark, payload.len(), out);
    out.extend_from_slice(payload);
    out.push(0);
}

/// What comes before an element's payload: its length, its mark, a NUL.
fn push_header(mark: u8, len: usize, out: &mut Vec<u8>) {
    push_decimal(len, out);
    out.push(mark);
    out.push(0);
}

/// The decimal digits of `n`, written in place. itoa rather than `write!`:
/// the integers of an echo (lengths, ids) cost ~0.9k of its ~27k
/// instructions through `core::fmt`.
fn push_decimal(n: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Decimal digits only (no sign, no space), folded by hand: through
/// `from_utf8` and `str::parse` the four lengths of an echo cost ~0.4k
/// instructions.
fn parse_length(digits: &[u8]) -> Result<usize, CodecError> {
    let bad = || CodecError::BadLength(String::from_utf8_lossy(digits).chars().take(24).collect());
    if digits.is_empty() {
        return Err(bad());
    }
    digits.iter().try_fold(0usize, |n, &d| {
        let digit = if d.is_ascii_digit() { usize::from(d - b'0') } else { return Err(bad()) };
        n.checked_mul(10).and_then(|n| n.checked_add(digit)).ok_or_else(bad)
    })
}

/// Most elements are short ASCII (event names, ids, `null`): `is_ascii`
/// reads them a word at a time, where `from_utf8` spends ~50 instructions on
/// each call and ~5 on each byte (~270 of a 20 B echo's four elements,
/// tests/bench/HISTORY.md, "Short elements checked as ASCII").
#[allow(unsafe_code)]
fn utf8(payload: &[u8]) -> Result<&str, CodecError> {
    if payload.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(payload) });
    }
    std::str::from_utf8(payload).map_err(|_| CodecError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_print_as_decimal() {
        for n in [0, 7, 10, 99, 100, 16384, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(n, &mut out);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    fn frame(bytes: &[u8]) -> Bytes {
        Bytes::copy_from_slice(bytes)
    }

    #[test]
    fn whole_numbers_take_a_short_path_to_the_same_bytes() {
        for n in [0.0, -0.0, 7.0, -42.0, 123_456_789_012_345.0, 1e15, 1.5, f64::NAN, f64::INFINITY] {
            let mut tagged = Vec::new();
            json::encode_tagged(&Value::Number(n), &mut tagged);
            let mut expected = format!("{}j\0", tagged.len()).into_bytes();
            expected.extend_from_slice(&tagged);
            expected.push(0);
            assert_eq!(encode([&Value::Number(n)]), expected, "{n}");
        }
    }

    #[test]
    fn byte_examples_of_the_protocol() {
        let auth = b"13f\0ezez-ws::auth\x006f\0secret\x005j\0\"n:1\"\0";
        let values = decode(&frame(auth)).unwrap();
        assert_eq!(values, vec!["ezez-ws::auth".into(), "secret".into(), Value::Number(1.0)]);
        assert_eq!(encode(&values), auth);

        let reply = b"4f\0data\x005j\0\"n:2\"\x005j\0\"n:7\"\x002t\0\x01\x02\0";
        let values = decode(&frame(reply)).unwrap();
        assert_eq!(values[3], Value::Bytes(Bytes::from_static(&[1, 2])));
        assert_eq!(encode(&values), reply);
    }

    #[test]
    fn a_tagged_element_gets_the_header_of_its_length() {
        for n in [1, 4, 40] {
            let value = Value::Array((0..n).map(|i| Value::Number(f64::from(i))).collect());
            let mut tagged = Vec::new();
            json::encode_tagged(&value, &mut tagged);
            let mut expected = format!("2f\0ab\0{}j\0", tagged.len()).into_bytes();
            expected.extend_from_slice(&tagged);
            expected.push(0);
            let values = ["ab".into(), value];
            assert_eq!(encode(&values), expected, "{n} items: {} bytes of JSON", tagged.len());
            assert_eq!(decode(&frame(&expected)).unwrap(), values);
        }
    }

    #[test]
    fn payloads_may_hold_nul_and_multibyte_text() {
        let values = vec![Value::Bytes(Bytes::from_static(b"\0\0")), "h\u{e9}llo".into()];
        let bytes = encode(&values);
        assert_eq!(bytes, b"2t\0\0\0\x006f\0h\xc3\xa9llo\0");
        assert_eq!(decode(&frame(&bytes)).unwrap(), values);
    }

    #[test]
    fn text_past_the_ascii_check_is_still_read_as_utf8() {
        for text in ["h\u{e9}llo", "an ASCII word first, then \u{e9}", "\u{1f600}"] {
            let values = vec![Value::String(text.into())];
            assert_eq!(decode(&frame(&encode(&values))).unwrap(), values);
        }
    }

    #[test]
    fn decoding_is_total_on_arbitrary_bytes() {
        // A deterministic xorshift stream of frames, biased towards the
        // characters the format uses, must never panic.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789ftj\0\"{}[]:snbiul,x";
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> =
                (0..len)
                    .map(|_| {
                        if next() % 4 == 0 { next() as u8 } else { alphabet[(next() % alphabet.len() as u64) as usize] }
                    })
                    .collect();
            let _ = decode(&frame(&bytes));
        }
    }

    #[test]
    fn every_malformation_is_an_error() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"4f", "no NUL after the header"),
            (b"\0", "empty header"),
            (b"f\0\0", "no length"),
            (b"-1f\0\0", "negative length"),
            (b"1 f\0a\0", "length with a space"),
            (b"4q\0test\0", "unknown mark"),
            (b"9f\0test\0", "length past the end"),
            (b"4f\0test", "no separator at the end"),
            (b"4f\0testX", "wrong separator"),
            (b"2f\0\xff\xfe\0", "invalid UTF-8"),
            (b"10f\0abcdefgh\xc3(\0", "invalid UTF-8 after an ASCII word"),
            (b"3j\0\"\x80\"\0", "invalid UTF-8 in a tagged element"),
            (b"3j\0abc\0", "invalid JSON"),
            (b"5j\0\"x:1\"\0", "unknown tag"),
            (b"99999999999999999999999f\0", "length overflow"),
        ];
        for (input, what) in cases {
            assert!(decode(&frame(input)).is_err(), "{what} must fail");
        }
    }
}
