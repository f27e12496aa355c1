//! A stderr writer for high-rate logs (`raygate serve` writes one line per request): lines are
//! appended to a shared buffer and one background thread writes them in batches, one `write(2)`
//! per batch instead of one per line (and one wake-up of whoever reads the pipe).
//!
//! - A line reaches stderr at most [`FLUSH_DELAY`] after it was logged; the thread sleeps while
//!   nothing is pending.
//! - Nothing is dropped: when stderr stalls and [`MAX_PENDING`] bytes are waiting, the logging
//!   thread writes them itself (the back-pressure plain stderr would give).
//! - Order is kept: every write to stderr happens under one lock, taking the oldest bytes first.
//! - [`FlushGuard`] (dropped at the end of `serve`) writes what is pending before exit.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// Longest time a line waits in the buffer.
pub const FLUSH_DELAY: Duration = Duration::from_millis(5);
/// Pending bytes at which a logging thread writes synchronously.
pub const MAX_PENDING: usize = 1 << 20;

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// The background thread waits for the first pending byte (so a writer must wake it).
    idle: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Held while bytes go to stderr, so batches leave in the order they were taken.
    out: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Takes everything pending and writes it (under `out`).
    fn drain(&self) {
        let _out = lock(&self.out);
        let batch = std::mem::take(&mut lock(&self.state).pending);
        if !batch.is_empty() {
            let _ = std::io::stderr().lock().write_all(&batch);
        }
    }
}

/// The `MakeWriter` handed to the tracing subscriber; cheap to clone.
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

/// Writes what is pending and stops the background thread when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BatchedStderr {
    /// Starts the background thread. Falls back to writing synchronously if it cannot start.
    pub fn start() -> (BatchedStderr, FlushGuard) {
        let shared = Arc::new(Shared::default());
        let bg = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || run(&bg))
            .ok();
        if thread.is_none() {
            // no thread: every line is written at once
            lock(&shared.state).closed = true;
        }
        (
            BatchedStderr {
                shared: shared.clone(),
            },
            FlushGuard { shared, thread },
        )
    }
}

fn run(shared: &Shared) {
    loop {
        {
            let mut st = lock(&shared.state);
            while st.pending.is_empty() && !st.closed {
                st.idle = true;
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.idle = false;
            if st.closed {
                return;
            }
        }
        // let a batch gather
        std::thread::sleep(FLUSH_DELAY);
        shared.drain();
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.shared.state);
            st.closed = true;
        }
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.drain();
    }
}

/// One event's writer: tracing-subscriber formats the whole line, then calls `write_all` once.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut st = lock(&self.shared.state);
        if st.closed || st.pending.len() + buf.len() > MAX_PENDING {
            // stalled stderr, shutting down, or no background thread: write it all now
            drop(st);
            let _out = lock(&self.shared.out);
            let batch = std::mem::take(&mut lock(&self.shared.state).pending);
            let mut err = std::io::stderr().lock();
            err.write_all(&batch)?;
            err.write_all(buf)?;
            return Ok(buf.len());
        }
        st.pending.extend_from_slice(buf);
        let wake = st.idle;
        st.idle = false;
        drop(st);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
