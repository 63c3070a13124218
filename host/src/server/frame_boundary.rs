//! Where a stream of WebSocket frames stands (RFC 6455, section 5.2), read
//! from the bytes handed to tungstenite: whether they end between whole
//! messages, so that tungstenite holds no part of one.
//!
//! tungstenite keeps its buffers at the largest size a message ever made
//! them (a frame's whole payload is reserved in its read buffer, a written
//! frame stays in the capacity of its write buffer), and offers no way to
//! shrink them. A fresh protocol context is the way, and it may only replace
//! the old one where nothing is in flight: this is the input's half of
//! knowing that (see [`Socket::release_buffers`](super::socket::Socket::release_buffers)).

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

#[derive(Debug, Default)]
pub struct FrameBoundary {
    /// The header of the frame coming in, while it is incomplete.
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// Inside a fragmented message: a data frame without FIN came, and the
    /// continuation with FIN has not.
    fragmented: bool,
    /// The largest frame payload since [`Self::forget_largest`].
    largest: u64,
}

impl FrameBoundary {
    /// Follows the frames through `bytes`, the next ones of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skipped = bytes.len().min(usize::try_from(self.payload_left).unwrap_or(usize::MAX));
                self.payload_left -= skipped as u64;
                bytes = &bytes[skipped..];
                continue;
            }
            if self.header_len == 0
                && let Some(header) = parse_header(bytes)
            {
                // The usual case: a whole header in one read, read in place.
                bytes = &bytes[header.len..];
                self.start_frame(header);
                continue;
            }
            // A header split between reads, gathered here.
            let taken = (MAX_HEADER - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + taken].copy_from_slice(&bytes[..taken]);
            match parse_header(&self.header[..self.header_len + taken]) {
                Some(header) => {
                    // Only the header's own bytes are used; the rest is payload or what follows.
                    bytes = &bytes[header.len - self.header_len..];
                    self.header_len = 0;
                    self.start_frame(header);
                }
                None => {
                    self.header_len += taken;
                    bytes = &bytes[taken..];
                }
            }
        }
    }

    fn start_frame(&mut self, header: Header) {
        match header.opcode {
            // Text or binary: a message starts, whole or in fragments.
            1 | 2 => self.fragmented = !header.fin,
            // A continuation; with FIN the fragmented message is complete.
            0 if header.fin => self.fragmented = false,
            // Control frames (never fragmented) may come between fragments.
            _ => {}
        }
        self.payload_left = header.payload;
        self.largest = self.largest.max(header.payload);
    }

    /// The bytes so far end between whole messages: no part of a frame, no
    /// fragment of a message.
    pub fn between_messages(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0 && !self.fragmented
    }

    /// The largest frame payload since the last [`Self::forget_largest`].
    pub fn largest(&self) -> u64 {
        self.largest
    }

    pub fn forget_largest(&mut self) {
        self.largest = 0;
    }
}

struct Header {
    /// Bytes of the header itself.
    len: usize,
    fin: bool,
    opcode: u8,
    payload: u64,
}

/// The header at the start of `bytes`, if all of it is there.
fn parse_header(bytes: &[u8]) -> Option<Header> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let len = 2 + extended + mask;
    if bytes.len() < len {
        return None;
    }
    let payload = match extended {
        0 => u64::from(second & 0x7f),
        _ => bytes[2..2 + extended].iter().fold(0, |n, &b| n << 8 | u64::from(b)),
    };
    Some(Header { len, fin: first & 0x80 != 0, opcode: first & 0x0f, payload })
}

/// A client's frame of `payload`, masked as a client's are.
#[cfg(test)]
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    let mask = [1, 2, 3, 4];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(byte, key)| byte ^ key));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, payload: usize) -> Vec<u8> {
        client_frame(fin, opcode, &vec![0x55; payload])
    }

    #[test]
    fn whole_messages_of_every_length_form_end_between_messages() {
        for payload in [0, 20, 125, 126, 1024, 0xffff, 0x10000] {
            let mut boundary = FrameBoundary::default();
            boundary.feed(&frame(true, 2, payload));
            assert!(boundary.between_messages(), "{payload} B");
            assert_eq!(boundary.largest(), payload as u64);
        }
    }

    #[test]
    fn bytes_cut_anywhere_end_between_messages_only_at_the_end() {
        let mut stream = frame(true, 1, 20);
        stream.extend(frame(true, 2, 300));
        stream.extend(frame(true, 2, 70_000));
        let ends = [stream.len() - 70_000 - 14 - 300 - 8, stream.len() - 70_000 - 14, stream.len()];
        for cut in 0..=stream.len() {
            let mut boundary = FrameBoundary::default();
            boundary.feed(&stream[..cut]);
            // Then the rest, one byte at a time at first: headers split anywhere.
            assert_eq!(boundary.between_messages(), cut == 0 || ends.contains(&cut), "cut at {cut}");
            for byte in stream[cut..].chunks(1).take(20) {
                boundary.feed(byte);
            }
            boundary.feed(&stream[(cut + 20).min(stream.len())..]);
            assert!(boundary.between_messages(), "cut at {cut}, then the rest");
            assert_eq!(boundary.largest(), 70_000);
        }
    }

    #[test]
    fn a_fragmented_message_ends_with_its_last_continuation() {
        let mut boundary = FrameBoundary::default();
        boundary.feed(&frame(false, 1, 10));
        assert!(!boundary.between_messages(), "a first fragment");
        boundary.feed(&frame(true, 9, 4));
        assert!(!boundary.between_messages(), "a ping between fragments");
        boundary.feed(&frame(false, 0, 10));
        assert!(!boundary.between_messages(), "a middle fragment");
        boundary.feed(&frame(true, 0, 10));
        assert!(boundary.between_messages(), "the last fragment");
    }

    #[test]
    fn forgetting_the_largest_frame_starts_counting_again() {
        let mut boundary = FrameBoundary::default();
        boundary.feed(&frame(true, 2, 5000));
        boundary.forget_largest();
        boundary.feed(&frame(true, 2, 20));
        assert_eq!(boundary.largest(), 20);
    }
}
