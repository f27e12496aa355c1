//! A fixed pool of handler threads that takes requests in arrival order.
//!
//! Why not run the handlers on the async runtime's workers: a handler is tens of microseconds
//! of pure CPU (JSON parse, rules, reply). On the runtime workers, with dozens of requests in
//! flight, the connection tasks that read new requests and write finished replies queue behind
//! the handlers, and the runtime's LIFO slot and work stealing serve requests out of order: at
//! 64 requests in flight the spread between the fastest and slowest tenth of requests was 4×.
//! Here the runtime workers only do I/O (and are usually idle, so the kernel runs them as soon
//! as they wake), while the handler threads take requests strictly first in, first out.
//!
//! A job whose caller has gone (request timeout, client reset) before a thread picks it up is
//! skipped. A panicking job is caught: its caller sees [`PoolError`] and the thread lives on.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// The handler threads. Dropping the pool lets the threads finish the queued jobs and exit.
pub struct HandlerPool {
    shared: Arc<Shared>,
    threads: usize,
}

/// The job did not produce a result: it panicked, or the pool is shut down.
#[derive(Debug, thiserror::Error)]
#[error("the request handler failed")]
pub struct PoolError;

impl HandlerPool {
    /// Starts `threads` handler threads (at least one), named `raygate-handler-<i>`.
    pub fn start(threads: usize) -> std::io::Result<HandlerPool> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::with_capacity(256),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        for i in 0..threads {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("raygate-handler-{i}"))
                .spawn(move || worker(&s))?;
        }
        Ok(HandlerPool { shared, threads })
    }

    /// Number of handler threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on a handler thread after every job queued before it has started.
    pub async fn run<R, F>(&self, f: F) -> Result<R, PoolError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return; // the request is gone: do not spend the CPU
            }
            if let Ok(r) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let _ = tx.send(r);
            }
        });
        {
            let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.closed {
                return Err(PoolError);
            }
            q.jobs.push_back(job);
        }
        self.shared.ready.notify_one();
        rx.await.map_err(|_| PoolError)
    }
}

fn worker(s: &Shared) {
    loop {
        let job = {
            let mut q = s.queue.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                if q.closed {
                    return;
                }
                q = s.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        job();
    }
}

impl Drop for HandlerPool {
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = true;
        self.shared.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn one_thread_runs_jobs_in_arrival_order() {
        let pool = Arc::new(HandlerPool::start(1).unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        rt().block_on(async {
            let futs: Vec<_> = (0..50)
                .map(|i| {
                    let o = order.clone();
                    let p = pool.clone();
                    async move { p.run(move || o.lock().unwrap().push(i)).await }
                })
                .collect();
            for r in futures::future::join_all(futs).await {
                r.unwrap();
            }
        });
        assert_eq!(*order.lock().unwrap(), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_thread_survives() {
        let pool = HandlerPool::start(1).unwrap();
        rt().block_on(async {
            let r = pool.run(|| -> u32 { panic!("boom") }).await;
            assert!(r.is_err());
            assert_eq!(pool.run(|| 7).await.unwrap(), 7);
        });
    }

    #[test]
    fn a_job_whose_caller_left_is_skipped() {
        let pool = HandlerPool::start(1).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        rt().block_on(async {
            // Hold the only thread so the next job waits in the queue.
            let blocker = pool.run(move || {
                let _ = gate_rx.recv();
            });
            let r = ran.clone();
            let abandoned = pool.run(move || r.fetch_add(1, Ordering::SeqCst));
            // Poll both once (queues them), then drop the second caller.
            let mut blocker = Box::pin(blocker);
            let mut abandoned = Box::pin(abandoned);
            assert!((&mut blocker).now_or_never().is_none());
            assert!((&mut abandoned).now_or_never().is_none());
            drop(abandoned);
            gate_tx.send(()).unwrap();
            blocker.await.unwrap();
            // A later job runs after the skipped one.
            assert_eq!(pool.run(|| 1).await.unwrap(), 1);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
