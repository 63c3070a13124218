//! Reads a connection's big messages in few system calls while an idle
//! connection holds no read buffer.
//!
//! tungstenite reads at most its `read_buffer_size` per call and zero-fills
//! that much of its buffer first, memory an idle connection then keeps. The
//! server keeps that size small ([`READ_BUFFER_BYTES`](super::READ_BUFFER_BYTES))
//! for the idle-memory target, which alone would cost a 16 KiB message nine
//! `recv` calls. [`ReadAhead`] lets the small reads through untouched; when
//! one fills tungstenite's buffer (so more is likely waiting) it reads what
//! else the socket has into a spill buffer and answers the next reads from
//! it, freeing the spill once it is drained: a 16 KiB message takes two
//! `recv` calls and an idle connection keeps nothing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes one read-ahead takes from the socket.
const SPILL_BYTES: usize = 64 * 1024;

/// A byte stream whose reads are served ahead of the caller's buffer size
/// once that buffer runs full. Writes pass through.
pub struct ReadAhead<S> {
    inner: S,
    /// Bytes read ahead and not yet handed out; unallocated when empty.
    spill: BytesMut,
    /// An error the read-ahead met, reported once the spill is drained.
    error: Option<io::Error>,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> Self {
        ReadAhead::after(inner, Bytes::new())
    }

    /// A stream whose first reads return `read` (bytes an HTTP server read
    /// past the upgrade request), then what `inner` gives.
    pub fn after(inner: S, read: Bytes) -> Self {
        // Copied, not converted: `read` is a slice of the HTTP server's read
        // buffer (8 KiB or more), which `BytesMut::from(Bytes)` would take over
        // whole, even when empty, and an idle connection would keep.
        ReadAhead { inner, spill: BytesMut::from(&read[..]), error: None }
    }

    /// Frees the spill once nothing is left in it.
    fn free_drained_spill(&mut self) {
        if self.spill.is_empty() {
            self.spill = BytesMut::new();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.spill.is_empty() {
            let n = this.spill.len().min(buf.remaining());
            buf.put_slice(&this.spill[..n]);
            this.spill.advance(n);
            this.free_drained_spill();
            return Poll::Ready(Ok(()));
        }
        if let Some(error) = this.error.take() {
            return Poll::Ready(Err(error));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before && buf.remaining() == 0 {
            this.spill.reserve(SPILL_BYTES);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.spill) {
                Poll::Ready(Err(error)) => this.error = Some(error),
                // End of stream or nothing more yet: the next read finds out again.
                Poll::Ready(Ok(_)) | Poll::Pending => {}
            }
            this.free_drained_spill();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads through `ReadAhead` with buffers of `chunk` bytes until the
    /// writer's end closes, counting the reads that reached the socket.
    async fn read_all(data: &[u8], chunk: usize) -> (Vec<u8>, usize) {
        let (mut writer, reader) = tokio::io::duplex(256 * 1024);
        writer.write_all(data).await.unwrap();
        drop(writer);
        let mut reader = ReadAhead::new(Counting { inner: reader, reads: 0 });
        let mut out = Vec::new();
        let mut buf = vec![0; chunk];
        loop {
            let n = reader.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(reader.spill.is_empty() && reader.spill.capacity() == 0, "the spill is freed once drained");
        (out, reader.inner.reads)
    }

    struct Counting<S> {
        inner: S,
        reads: usize,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            self.reads += 1;
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    #[tokio::test]
    async fn a_big_message_is_read_ahead_in_few_reads_and_arrives_whole() {
        let data: Vec<u8> = (0..16 * 1024 + 7).map(|i| (i % 251) as u8).collect();
        let (out, reads) = read_all(&data, 2048).await;
        assert_eq!(out, data);
        // One read fills the 2 KiB buffer, the read-ahead takes the rest, one finds the end.
        assert_eq!(reads, 3);
    }

    #[tokio::test]
    async fn more_than_one_read_ahead_arrives_in_order() {
        let data: Vec<u8> = (0..3 * SPILL_BYTES + 100).map(|i| (i % 241) as u8).collect();
        let (out, _) = read_all(&data, 2048).await;
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn bytes_read_past_the_upgrade_come_first_and_keep_nothing_of_the_http_buffer() {
        let (mut writer, reader) = tokio::io::duplex(1024);
        writer.write_all(b" world").await.unwrap();
        // What hyper hands over: the rest of its read buffer, frozen.
        let mut http_buffer = BytesMut::with_capacity(8 * 1024);
        http_buffer.extend_from_slice(b"GET / HTTP/1.1\r\n\r\nhello");
        let past_request = http_buffer.split_off(18).freeze();
        let mut reader = ReadAhead::after(reader, past_request);
        assert_eq!(reader.spill.capacity(), 5, "the read bytes, not the HTTP buffer");
        let mut buf = [0; 2048];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(reader.read(&mut buf).await.unwrap(), 6);
        assert_eq!(&buf[..6], b" world");

        let nothing_past_it = BytesMut::with_capacity(8 * 1024).freeze();
        let reader = ReadAhead::after(tokio::io::empty(), nothing_past_it);
        assert_eq!(reader.spill.capacity(), 0, "an idle connection keeps no buffer");
    }

    #[tokio::test]
    async fn a_small_message_is_read_without_a_spill() {
        let (mut writer, reader) = tokio::io::duplex(1024);
        writer.write_all(b"hello").await.unwrap();
        let mut reader = ReadAhead::new(reader);
        let mut buf = [0; 2048];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 5);
        assert_eq!(reader.spill.capacity(), 0);
    }
}
