//! The floor: the least work a WebSocket echo over tokio can do, so the
//! bench can print what this machine allows rather than derive it. One task
//! per connection reads whatever has arrived, unmasks each whole frame into
//! an unmasked copy of it and writes them all back in one write: no codec,
//! no handler, no copies beyond the one reply, and no second read that only
//! finds the socket empty. It has no protocol of its own (the generator talks
//! to it as to the bare echo), no pings, no limits: a measuring stick, not a
//! server to run.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

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
/// those frames took, or `None` at a close frame, which ends the connection.
fn reply_to_frames(input: &mut [u8], output: &mut Vec<u8>) -> Option<usize> {
    let mut at = 0;
    while let Some((header, len)) = frame_at(&input[at..]) {
        if input[at] & 0x0f == CLOSE {
            return None;
        }
        let frame = &mut input[at..at + header + len];
        let masked = frame[1] & 0x80 != 0;
        let (head, payload) = frame.split_at_mut(header);
        if masked {
            let key: [u8; 4] = head[header - 4..].try_into().unwrap();
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        output.push(head[0]);
        match len {
            0..126 => output.push(len as u8),
            126..65536 => {
                output.push(126);
                output.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                output.push(127);
                output.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        output.extend_from_slice(payload);
        at += header + len;
    }
    Some(at)
}

const CLOSE: u8 = 8;

/// The header length and payload length of the frame `bytes` starts with,
/// if all of it is there.
fn frame_at(bytes: &[u8]) -> Option<(usize, usize)> {
    let second = *bytes.get(1)?;
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let (extended, len) = match second & 0x7f {
        126 => (2, u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize),
        127 => (8, usize::try_from(u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)).ok()?),
        short => (0, usize::from(short)),
    };
    let header: usize = 2 + extended + mask;
    (bytes.len() >= header.checked_add(len)?).then_some((header, len))
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
