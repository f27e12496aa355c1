//! Leader election through a `coordination.k8s.io/v1` Lease, with client-go's semantics: the
//! holder renews every `retry` period; a candidate takes over once it has not seen the lease
//! change for `lease_duration` (measured on its own monotonic clock, so clock skew does not
//! matter); the holder stops writing as soon as `renew_deadline` passes without a successful
//! renewal (before any other replica may take over).

use super::admin::{Metrics, category};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lease knobs.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry: Duration,
}

/// Shared view of leadership. `is_leader()` is checked before every write.
#[derive(Debug, Clone)]
pub struct Leadership {
    /// `Some(t)`: we hold the lease, last renewed (successfully) at `t`. `None`: not leader.
    inner: Arc<Mutex<Option<Instant>>>,
    renew_deadline: Duration,
    /// Always leader (leader election disabled).
    always: bool,
}

impl Leadership {
    pub fn always() -> Self {
        Leadership {
            inner: Arc::new(Mutex::new(None)),
            renew_deadline: Duration::ZERO,
            always: true,
        }
    }

    fn new(renew_deadline: Duration) -> Self {
        Leadership {
            inner: Arc::new(Mutex::new(None)),
            renew_deadline,
            always: false,
        }
    }

    /// True while we hold the lease and the last renewal is younger than the renew deadline.
    pub fn is_leader(&self) -> bool {
        if self.always {
            return true;
        }
        let g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        matches!(*g, Some(t) if t.elapsed() < self.renew_deadline)
    }

    fn set(&self, v: Option<Instant>) {
        match self.inner.lock() {
            Ok(mut g) => *g = v,
            Err(p) => *p.into_inner() = v,
        }
    }
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Starts the election loop; returns the shared leadership view.
pub fn start(client: kube::Client, opts: LeaseOptions, metrics: Arc<Metrics>) -> Leadership {
    let lead = Leadership::new(opts.renew_deadline);
    let l2 = lead.clone();
    tokio::spawn(async move { run(client, opts, l2, metrics).await });
    lead
}

async fn run(client: kube::Client, opts: LeaseOptions, lead: Leadership, metrics: Arc<Metrics>) {
    let api: Api<Lease> = Api::namespaced(client, &opts.namespace);
    // What we last saw of somebody else's lease, and when (our clock).
    let mut observed: Option<(String, Instant)> = None;
    let mut was_leader = false;
    loop {
        let res = tokio::time::timeout(opts.retry.max(Duration::from_secs(1)), async {
            step(&api, &opts, &mut observed).await
        })
        .await;
        match res {
            Ok(Ok(true)) => lead.set(Some(Instant::now())),
            Ok(Ok(false)) => lead.set(None),
            Ok(Err(e)) => {
                metrics.error(category::LEASE);
                tracing::warn!(lease = %opts.name, error = %e, "lease update failed");
            }
            Err(_) => {
                metrics.error(category::LEASE);
                tracing::warn!(lease = %opts.name, "lease update timed out");
            }
        }
        let now = lead.is_leader();
        metrics.leader.set(i64::from(now));
        if now != was_leader {
            if now {
                tracing::info!(identity = %opts.identity, lease = %opts.name, "became leader");
            } else {
                tracing::warn!(identity = %opts.identity, lease = %opts.name, "lost leadership; writes stopped");
            }
            was_leader = now;
        }
        tokio::time::sleep(opts.retry).await;
    }
}

/// One attempt to acquire or renew. `Ok(true)`: we hold the lease now.
async fn step(
    api: &Api<Lease>,
    opts: &LeaseOptions,
    observed: &mut Option<(String, Instant)>,
) -> Result<bool, kube::Error> {
    let secs = i32::try_from(opts.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let cur = match api.get_opt(&opts.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(opts.name.clone()),
                    namespace: Some(opts.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(opts.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now_micro()),
                    renew_time: Some(now_micro()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        }
        Some(l) => l,
    };
    let spec = cur.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let rv = cur.metadata.resource_version.clone().unwrap_or_default();
    let mine = holder == opts.identity;
    if !mine && !holder.is_empty() {
        // Somebody else's: expired only after lease_duration without any change we observed.
        let dur = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(u64::try_from(s.max(1)).unwrap_or(1)))
            .unwrap_or(opts.lease_duration);
        let seen_at = match observed {
            Some((v, t)) if *v == rv => *t,
            _ => {
                *observed = Some((rv.clone(), Instant::now()));
                return Ok(false);
            }
        };
        if seen_at.elapsed() < dur {
            return Ok(false);
        }
    }
    let mut next = cur.clone();
    let mut s = spec;
    if !mine {
        s.holder_identity = Some(opts.identity.clone());
        s.acquire_time = Some(now_micro());
        s.lease_transitions = Some(s.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    s.lease_duration_seconds = Some(secs);
    s.renew_time = Some(now_micro());
    next.spec = Some(s);
    // `replace` carries our resourceVersion: a concurrent writer makes this a 409.
    match api.replace(&opts.name, &PostParams::default(), &next).await {
        Ok(_) => {
            *observed = None;
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
