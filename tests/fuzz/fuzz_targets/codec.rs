//! Any bytes, as a binary frame or a text frame: decoding gives a message or
//! an error, never a panic, and what decodes re-encodes stably.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ws_host::codec::{Codec, Frame, decode_text, decode_values, encode_text, encode_values};

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(values) = decode_values(&frame) {
        let once = encode_values(&values);
        let again = decode_values(&Bytes::from(once.clone())).expect("our own encoding decodes");
        assert_eq!(encode_values(&again), once, "encoding is stable");
    }
    let _ = Codec::decode(&Frame::Binary(frame));
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(values) = decode_text(text) {
            let once = encode_text(&values);
            let again = decode_text(&once).expect("our own JSON decodes");
            assert_eq!(encode_text(&again), once, "JSON encoding is stable");
        }
        let _ = Codec::decode(&Frame::Text(text.to_owned()));
    }
});
