//! Memory and connection budgets for the webhook (issue #14, defects 1 and 2).
//!
//! - [`Budget`]: every request body is reserved before it is buffered. Bodies up to
//!   `large_threshold` take their size from a shared byte budget; larger ones (and bodies of
//!   unknown length) take one of `large_concurrency` slots, with at most `large_queue` more
//!   waiting for a slot. A request that finds the queue full is answered 429 at once: waiting
//!   requests hold no body (their bytes stay in HTTP/2 flow control and the kernel), and their
//!   number is bounded. A large request keeps its slot until its reply is built, so the parse
//!   of at most `large_concurrency` large bodies is in memory at once.
//! - [`ConnSlots`]: a connection cap. At the cap, the oldest connection is closed to make room,
//!   so idle or dribbling connections cannot keep new ones (a kubelet probe, the API server)
//!   out, and descriptors stay bounded.

use axum::body::Body;
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Limits for [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Largest accepted body, bytes.
    pub body_limit: usize,
    /// Bodies above this (or of unknown length) are large.
    pub large_threshold: usize,
    /// Large bodies buffered and handled at once.
    pub large_concurrency: usize,
    /// Large requests allowed to wait for a slot; more are answered 429.
    pub large_queue: usize,
    /// Bytes of small bodies buffered at once (the rest wait).
    pub small_bytes: usize,
}

/// Why a body was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over the body limit (declared or as read).
    TooLarge { limit: usize },
    /// The large-request queue is full.
    Busy,
    /// The client's body stream failed.
    Read(String),
}

/// A buffered body and the budget it holds until dropped.
pub struct Admitted {
    pub bytes: Vec<u8>,
    /// Whether it took a large slot (handle it off the handler threads).
    pub large: bool,
    _permit: Option<OwnedSemaphorePermit>,
    _slot: Option<LargeSlot>,
}

struct LargeSlot {
    _permit: OwnedSemaphorePermit,
    stats: Arc<Stats>,
}

impl Drop for LargeSlot {
    fn drop(&mut self) {
        self.stats.large_active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Stats {
    large_active: AtomicUsize,
    large_peak: AtomicUsize,
    large_waiting: AtomicUsize,
}

/// See the module documentation.
pub struct Budget {
    limits: BudgetLimits,
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
    stats: Arc<Stats>,
}

const KIB: usize = 1024;

fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(KIB).max(1)).unwrap_or(u32::MAX)
}

impl Budget {
    pub fn new(limits: BudgetLimits) -> Budget {
        let limits = BudgetLimits {
            large_concurrency: limits.large_concurrency.max(1),
            // a small body must always fit
            small_bytes: limits.small_bytes.max(limits.large_threshold).max(KIB),
            ..limits
        };
        Budget {
            small: Arc::new(Semaphore::new(kib(limits.small_bytes) as usize)),
            large: Arc::new(Semaphore::new(limits.large_concurrency)),
            stats: Arc::new(Stats::default()),
            limits,
        }
    }

    pub fn limits(&self) -> BudgetLimits {
        self.limits
    }

    /// Most large requests held at once so far (for tests and the benchmark).
    pub fn large_peak(&self) -> usize {
        self.stats.large_peak.load(Ordering::SeqCst)
    }

    /// Reserves room for the body (waiting if needed), then reads it. The caller keeps `body`
    /// (on HTTP/2, dropping an unfinished request body before the reply is sent resets the
    /// stream, and the client never sees the reply).
    pub async fn admit(
        &self,
        content_length: Option<u64>,
        body: &mut Body,
    ) -> Result<Admitted, BodyError> {
        let limit = self.limits.body_limit;
        let declared = match content_length {
            Some(n) if n > limit as u64 => return Err(BodyError::TooLarge { limit }),
            Some(n) => Some(n as usize),
            None => None,
        };
        let large = declared.is_none_or(|n| n > self.limits.large_threshold);
        let (permit, slot) = if large {
            (None, Some(self.large_slot().await?))
        } else {
            let n = kib(declared.unwrap_or(0));
            let p = self
                .small
                .clone()
                .acquire_many_owned(n)
                .await
                .map_err(|_| BodyError::Busy)?;
            (Some(p), None)
        };
        let bytes = read_body(body, declared, limit).await?;
        Ok(Admitted {
            bytes,
            large,
            _permit: permit,
            _slot: slot,
        })
    }

    async fn large_slot(&self) -> Result<LargeSlot, BodyError> {
        let s = &self.stats;
        let permit = match self.large.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if s.large_waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.large_queue {
                    s.large_waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(BodyError::Busy);
                }
                struct Waiting<'a>(&'a AtomicUsize);
                impl Drop for Waiting<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                let _w = Waiting(&s.large_waiting);
                self.large
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| BodyError::Busy)?
            }
        };
        let now = s.large_active.fetch_add(1, Ordering::SeqCst) + 1;
        s.large_peak.fetch_max(now, Ordering::SeqCst);
        Ok(LargeSlot {
            _permit: permit,
            stats: s.clone(),
        })
    }
}

/// Reads the body into one allocation of the declared size (no regrowth), refusing more than
/// `limit` bytes.
async fn read_body(
    body: &mut Body,
    declared: Option<usize>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(declared.unwrap_or(16 * KIB));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// A connection cap that makes room by closing the oldest connection.
pub struct ConnSlots {
    cap: usize,
    inner: Mutex<SlotsInner>,
}

#[derive(Default)]
struct SlotsInner {
    next: u64,
    open: BTreeMap<u64, oneshot::Sender<()>>,
}

/// A connection's place; closing is signalled on `evicted`. Dropping it frees the place.
pub struct ConnSlot {
    id: u64,
    slots: Arc<ConnSlots>,
    pub evicted: oneshot::Receiver<()>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.slots.lock().open.remove(&self.id);
    }
}

impl ConnSlots {
    pub fn new(cap: usize) -> Arc<ConnSlots> {
        Arc::new(ConnSlots {
            cap: cap.max(1),
            inner: Mutex::new(SlotsInner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// A place for a new connection, closing the oldest ones if the cap is reached.
    pub fn admit(self: &Arc<Self>) -> ConnSlot {
        let (tx, rx) = oneshot::channel();
        let mut g = self.lock();
        while g.open.len() >= self.cap {
            match g.open.pop_first() {
                Some((_, oldest)) => {
                    let _ = oldest.send(());
                }
                None => break,
            }
        }
        let id = g.next;
        g.next += 1;
        g.open.insert(id, tx);
        drop(g);
        ConnSlot {
            id,
            slots: self.clone(),
            evicted: rx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> BudgetLimits {
        BudgetLimits {
            body_limit: 1000,
            large_threshold: 100,
            large_concurrency: 1,
            large_queue: 1,
            small_bytes: 4096,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn over_the_limit_is_refused_declared_or_read() {
        let b = Budget::new(limits());
        rt().block_on(async {
            let r = b.admit(Some(1001), &mut Body::from(vec![0u8; 10])).await;
            assert_eq!(r.err(), Some(BodyError::TooLarge { limit: 1000 }));
            // no Content-Length: counted as it arrives
            let r = b.admit(None, &mut Body::from(vec![0u8; 1001])).await;
            assert_eq!(r.err(), Some(BodyError::TooLarge { limit: 1000 }));
            let ok = b
                .admit(None, &mut Body::from(vec![7u8; 1000]))
                .await
                .unwrap();
            assert_eq!(ok.bytes.len(), 1000);
            assert!(ok.large);
            let small = b
                .admit(Some(5), &mut Body::from(vec![1u8; 5]))
                .await
                .unwrap();
            assert!(!small.large);
            assert_eq!(small.bytes, vec![1u8; 5]);
        });
    }

    #[test]
    fn large_requests_wait_for_a_slot_and_a_full_queue_is_busy() {
        let b = Budget::new(limits());
        rt().block_on(async {
            let mut bodies: Vec<Body> = (0..3).map(|_| Body::from(vec![0u8; 500])).collect();
            let [b1, b2, b3] = &mut bodies[..] else {
                unreachable!()
            };
            let first = b.admit(Some(500), b1).await.unwrap();
            // one may wait...
            let mut waiting = Box::pin(b.admit(Some(500), b2));
            assert!(futures::FutureExt::now_or_never(&mut waiting).is_none());
            // ...the next one is told at once
            let third = b.admit(Some(500), b3).await;
            assert_eq!(third.err(), Some(BodyError::Busy));
            drop(first);
            let second = waiting.await.unwrap();
            assert!(second.large);
            assert_eq!(b.large_peak(), 1);
        });
    }

    #[test]
    fn the_oldest_connection_makes_room() {
        let slots = ConnSlots::new(2);
        let mut a = slots.admit();
        let mut b = slots.admit();
        assert_eq!(slots.open(), 2);
        assert!(a.evicted.try_recv().is_err());
        let _c = slots.admit();
        assert!(a.evicted.try_recv().is_ok(), "the oldest is asked to close");
        assert!(b.evicted.try_recv().is_err());
        assert_eq!(slots.open(), 2);
        drop(b);
        assert_eq!(slots.open(), 1);
    }
}
