//! Socket I/O batching under rustls, for the webhook's connections.
//!
//! - Reads: rustls asks its transport for at most 4 KiB at a time (its buffer grows by 4 KiB
//!   per read and shrinks again when drained), so a 10 KB AdmissionReview took three `recvfrom`
//!   calls and sixteen pipelined ones about forty. [`SockBuf`] reads up to [`READ_CHUNK`] bytes
//!   per call and hands them out from memory.
//! - Writes: HTTP/2 flushes after every response it queues, and the task that finished a
//!   request usually wakes the connection task at once, so each response cost one `writev`
//!   (about 7 µs on loopback, most of it delivering to the peer). [`SockBuf`] gathers what is
//!   written, and the first flush of a batch defers itself (`tokio::task::yield_now`: the
//!   connection task runs again once its worker has no other task ready), so responses that
//!   complete meanwhile go out in the same `write`. An idle server flushes after one turn of
//!   the scheduler; a busy one sends one write per round of completed requests. More than
//!   [`WRITE_MAX`] pending bytes are written before taking more (back-pressure is kept).
//!
//! Buffers exist only while they hold bytes (an idle connection keeps none) and are never
//! zero-filled.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest read from the socket.
pub const READ_CHUNK: usize = 64 * 1024;
/// Pending write bytes at which writes go to the socket before more are taken.
pub const WRITE_MAX: usize = 256 * 1024;

/// `io` with reads batched into [`READ_CHUNK`]-sized socket reads and writes gathered until
/// a flush has waited one turn of the scheduler.
#[derive(Debug)]
pub struct SockBuf<IO> {
    io: IO,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    /// The current batch's flush has already waited its turn.
    deferred: bool,
}

impl<IO> SockBuf<IO> {
    pub fn new(io: IO) -> Self {
        SockBuf {
            io,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            deferred: false,
        }
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for SockBuf<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.rpos == this.rbuf.len() {
            if out.remaining() >= READ_CHUNK {
                // a large read needs no buffer
                return Pin::new(&mut this.io).poll_read(cx, out);
            }
            let mut fresh = Vec::with_capacity(READ_CHUNK);
            let n = {
                let mut rb = ReadBuf::uninit(fresh.spare_capacity_mut());
                ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
                rb.filled().len()
            };
            // SAFETY: `ReadBuf` guarantees its first `filled().len()` bytes were initialised
            // (written by the read above), and `n` is at most the capacity.
            unsafe { fresh.set_len(n) };
            if n == 0 {
                return Poll::Ready(Ok(())); // EOF
            }
            this.rbuf = fresh;
            this.rpos = 0;
        }
        let n = out.remaining().min(this.rbuf.len() - this.rpos);
        out.put_slice(&this.rbuf[this.rpos..this.rpos + n]);
        this.rpos += n;
        if this.rpos == this.rbuf.len() {
            // drained: release the memory
            this.rbuf = Vec::new();
            this.rpos = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> SockBuf<IO> {
    /// Writes every pending byte to the socket.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        self.wbuf = Vec::new();
        self.wpos = 0;
        Poll::Ready(Ok(()))
    }

    /// Makes room for more bytes: drains first when [`WRITE_MAX`] are pending.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.wbuf.len() >= WRITE_MAX {
            ready!(self.poll_drain(cx))?;
        }
        if self.wbuf.capacity() == 0 {
            self.wbuf.reserve(16 * 1024);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for SockBuf<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx))?;
        this.wbuf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx))?;
        let mut n = 0;
        for b in bufs {
            this.wbuf.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.wpos < this.wbuf.len() {
            if !this.deferred {
                // Let the other ready tasks (requests finishing on this connection) run first;
                // the scheduler wakes this task again when it has nothing else to do.
                this.deferred = true;
                let yielded = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                if yielded.is_pending() {
                    return Poll::Pending;
                }
            }
            ready!(this.poll_drain(cx))?;
        }
        this.deferred = false;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A reader that counts its reads and returns at most `max` bytes each.
    struct Counting {
        data: Vec<u8>,
        at: usize,
        reads: usize,
        max: usize,
    }

    impl AsyncRead for Counting {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.reads += 1;
            let n = out.remaining().min(this.max).min(this.data.len() - this.at);
            out.put_slice(&this.data[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn small_reads_are_served_from_one_large_read_and_bytes_are_unchanged() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut r = SockBuf::new(Counting {
            data: data.clone(),
            at: 0,
            reads: 0,
            max: usize::MAX,
        });
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = r.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, data);
        // 200,000 bytes in 64 KiB reads: 4 reads and the EOF read, not ~50
        assert_eq!(r.get_ref().reads, 5);
        assert_eq!(r.rbuf.capacity(), 0, "no memory kept after EOF");
    }

    #[tokio::test]
    async fn short_socket_reads_and_large_callers_work() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut r = SockBuf::new(Counting {
            data: data.clone(),
            at: 0,
            reads: 0,
            max: 1000,
        });
        let mut got = vec![0u8; 7];
        r.read_exact(&mut got).await.unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        got.extend_from_slice(&rest);
        assert_eq!(got, data);
        assert_eq!(r.rbuf.capacity(), 0, "drained: nothing held");
    }

    /// A writer that records each write call.
    #[derive(Default)]
    struct Recording {
        writes: Vec<Vec<u8>>,
        /// Accept at most this many bytes per call.
        max: usize,
    }

    impl AsyncWrite for Recording {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.get_mut().writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn writes_are_gathered_until_a_flush_and_go_out_whole() {
        let mut w = SockBuf::new(Recording {
            max: usize::MAX,
            ..Default::default()
        });
        w.write_all(b"hello ").await.unwrap();
        w.write_vectored(&[io::IoSlice::new(b"wor"), io::IoSlice::new(b"ld")])
            .await
            .unwrap();
        assert!(
            w.get_ref().writes.is_empty(),
            "nothing written before a flush"
        );
        w.flush().await.unwrap();
        assert_eq!(w.get_ref().writes, vec![b"hello world".to_vec()]);
        assert_eq!(w.wbuf.capacity(), 0, "drained: nothing held");
        // a flush with nothing pending writes nothing
        w.flush().await.unwrap();
        assert_eq!(w.get_ref().writes.len(), 1);
    }

    #[tokio::test]
    async fn partial_socket_writes_shutdown_and_back_pressure() {
        let mut w = SockBuf::new(Recording {
            max: 1000,
            ..Default::default()
        });
        let data: Vec<u8> = (0..(WRITE_MAX + 5000) as u32).map(|i| i as u8).collect();
        w.write_all(&data).await.unwrap();
        assert!(w.get_ref().writes.is_empty());
        // more than WRITE_MAX pending: they go out (in partial writes) before more is taken
        w.write_all(b"tail").await.unwrap();
        assert_eq!(w.wbuf.len(), 4);
        assert!(w.get_ref().writes.len() > WRITE_MAX / 1000);
        w.shutdown().await.unwrap();
        let sent: Vec<u8> = w.get_ref().writes.concat();
        assert_eq!(&sent[..data.len()], &data[..]);
        assert_eq!(&sent[data.len()..], b"tail");
    }

    #[tokio::test]
    async fn a_duplex_round_trip() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut w = SockBuf::new(a);
        w.write_all(b"ping").await.unwrap();
        w.flush().await.unwrap();
        let mut got = [0u8; 4];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        b.write_all(b"pong").await.unwrap();
        w.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }
}
