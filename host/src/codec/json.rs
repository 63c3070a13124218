//! The JSON text codec: one text frame holds a JSON array
//! `[name, eventId, replyTo, ...args]` of plain JSON values, so a browser or
//! `websocat` can talk to a handler with no client library.
//!
//! Mapping: `null` is null (undefined is written as null), numbers are numbers
//! (whole numbers beyond 2^53 are kept exactly, as bigints), byte buffers are
//! arrays of numbers, NaN and the infinities are written as null, as
//! `JSON.stringify` does.

use super::{CodecError, Value};

const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Parses a text frame into its values.
pub fn decode(text: &str) -> Result<Vec<Value>, CodecError> {
    match serde_json::from_str(text).map_err(|e| CodecError::Json(e.to_string()))? {
        serde_json::Value::Array(items) => Ok(items.into_iter().map(from_json).collect()),
        _ => Err(CodecError::NotAMessage("a JSON text frame must hold an array".into())),
    }
}

/// Writes values as a JSON array.
pub fn encode<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let array = serde_json::Value::Array(values.into_iter().map(to_json).collect());
    array.to_string()
}

/// One value as JSON (used for error messages too).
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Undefined | Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => serde_json::Number::from_f64(*n).map_or(J::Null, |n| {
            // Whole numbers print without a fraction, as in JavaScript.
            if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e21) {
                J::Number(serde_json::Number::from(n.as_f64().unwrap_or_default() as i64))
            } else {
                J::Number(n)
            }
        }),
        Value::BigInt(i) => i64::try_from(*i)
            .map(J::from)
            .or_else(|_| u64::try_from(*i).map(J::from))
            .unwrap_or_else(|_| J::String(i.to_string())),
        Value::String(s) => J::String(s.clone()),
        Value::Bytes(b) => J::Array(b.iter().map(|b| J::from(*b)).collect()),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Object(entries) => J::Object(entries.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

fn from_json(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) if u > MAX_SAFE_INTEGER => Value::BigInt(i128::from(u)),
            (_, Some(i)) if i.unsigned_abs() > MAX_SAFE_INTEGER => Value::BigInt(i128::from(i)),
            _ => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(s),
        J::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        J::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_both_ways() {
        let text = r#"["say",1,null,"lobby",{"n":2.5,"ok":true},[1,2]]"#;
        let values = decode(text).unwrap();
        assert_eq!(values[1], Value::Number(1.0));
        assert_eq!(encode(&values), text);
    }

    #[test]
    fn large_integers_stay_exact() {
        let values = decode("[18446744073709551615,-9007199254740993]").unwrap();
        assert_eq!(values, vec![Value::BigInt(u64::MAX.into()), Value::BigInt(-9007199254740993)]);
        assert_eq!(encode(&values), "[18446744073709551615,-9007199254740993]");
    }

    #[test]
    fn non_arrays_and_garbage_fail() {
        assert!(decode("{}").is_err());
        assert!(decode("[1,").is_err());
        assert_eq!(encode(&[Value::Number(f64::NAN), Value::Undefined]), "[null,null]");
    }
}
