//! The floor: the least work a WebSocket echo over tokio can do, so the
//! bench can print what this machine allows rather than derive it. One task
//! per connection reads whatever has arrived, unmasks each whole frame into
//! an unmasked copy of it and writes them all back in one write: no codec,
//! no handler, no copies beyond the one reply, and no second read that only
//! finds the socket empty. It has no protocol of its own (the generator talks
//! to it as to the bare echo), no pings, no limits: a measuring stick, not a
//! server to run.

use std::io::Cursor;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

/// The room one read has at least; a frame larger than that grows it.
const READ_CHUNK: usize = 64 * 1024;

pub async fn serve() {
    crate::servers::serve_each("floor echo", echo).await
}

async fn echo(mut stream: TcpStream) {
    let mut input = BytesMut::new();
    if upgrade(&mut stream, &mut input).await.is_none() {
        return;
    }
    let mut output = Vec::new();
    loop {
        let Some(consumed) = reply_to_frames(&mut input, &mut output) else { return };
        input.advance(consumed);
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        if !read_more(&mut stream, &mut input).await {
            return;
        }
    }
}

/// Answers the upgrade request; leaves in `input` whatever followed it.
async fn upgrade(stream: &mut TcpStream, input: &mut BytesMut) -> Option<()> {
    let end = loop {
        if let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if !read_more(stream, input).await {
            return None;
        }
    };
    let head = std::str::from_utf8(&input[..end]).ok()?;
    let key = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim())
    })?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(response.as_bytes()).await.ok()?;
    input.advance(end + 4);
    Some(())
}

/// Appends what the socket has, into spare room (nothing zeroed first);
/// false once it is closed or failed.
async fn read_more(stream: &mut TcpStream, input: &mut BytesMut) -> bool {
    input.reserve(READ_CHUNK);
    stream.read_buf(input).await.unwrap_or(0) > 0
}

/// Writes into `output` the server's copy of each whole frame at the start
/// of `input` (same opcode and flags, payload unmasked); returns the bytes
/// those frames took, or `None` at a close frame or one that does not parse,
/// either of which ends the connection. The headers are tungstenite's.
fn reply_to_frames(input: &mut [u8], output: &mut Vec<u8>) -> Option<usize> {
    let mut at = 0;
    loop {
        let mut cursor = Cursor::new(&input[at..]);
        let Some((mut header, len)) = FrameHeader::parse(&mut cursor).ok()? else { return Some(at) };
        if header.opcode == OpCode::Control(Control::Close) {
            return None;
        }
        let start = at + usize::try_from(cursor.position()).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let Some(payload) = input.get_mut(start..end) else { return Some(at) };
        if let Some(key) = header.mask.take() {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        header.format(len, output).ok()?;
        output.extend_from_slice(payload);
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_frame_comes_back_unmasked() {
        let key = [1, 2, 3, 4];
        let mut input = vec![0x82, 0x80 | 3];
        input.extend(key);
        input.extend([b'a' ^ 1, b'b' ^ 2, b'c' ^ 3]);
        input.extend([0x82, 0x80]); // the start of the next frame
        let mut output = Vec::new();
        assert_eq!(reply_to_frames(&mut input, &mut output), Some(9));
        assert_eq!(output, [0x82, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn lengths_take_the_extended_forms() {
        for len in [125usize, 126, 65535, 65536] {
            let mut input = vec![
                0x82,
                0x80 | if len < 126 {
                    len as u8
                } else if len < 65536 {
                    126
                } else {
                    127
                },
            ];
            if (126..65536).contains(&len) {
                input.extend((len as u16).to_be_bytes());
            } else if len >= 65536 {
                input.extend((len as u64).to_be_bytes());
            }
            input.extend([0; 4]);
            input.resize(input.len() + len, 7);
            let mut output = Vec::new();
            assert_eq!(reply_to_frames(&mut input, &mut output), Some(input.len()), "{len}");
            assert_eq!(output.len(), input.len() - 4, "{len}");
            assert!(output.ends_with(&[7]));
        }
    }

    #[test]
    fn a_close_is_seen() {
        let mut input = vec![0x88, 0x80, 0, 0, 0, 0];
        assert_eq!(reply_to_frames(&mut input, &mut Vec::new()), None);
    }
}
