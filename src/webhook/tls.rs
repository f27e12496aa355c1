//! Serving certificate with hot reload: a rustls `ResolvesServerCert` that hands out the
//! current `CertifiedKey` (swapped under a short lock), refreshed by a `notify` watcher on the
//! certificate's *directory* (Kubernetes Secret volumes swap a `..data` symlink, so the file
//! itself never gets a modify event) plus a slow poll as a fallback.
//!
//! A new pair is only installed once the chain parses, the key parses and matches the leaf,
//! and the leaf is not expired; otherwise the failure is logged and counted and the old pair
//! keeps serving. Half-written updates (new certificate, old key) are therefore harmless.

use crate::certs::{self, CertError, LoadedPair};
use crate::webhook::metrics::Metrics;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Where the serving pair comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files, watched for changes.
    Files { cert: PathBuf, key: PathBuf },
    /// An in-memory pair (ephemeral dev certificate); never reloaded.
    Memory { cert_pem: String, key_pem: String },
}

#[derive(Debug, Default)]
struct SeenState {
    /// Raw bytes of the last pair read from disk (loaded or rejected).
    bytes: Option<(Vec<u8>, Vec<u8>)>,
    /// Last read error, to count a failure once rather than at every poll.
    read_error: Option<String>,
}

/// The current serving pair and how to refresh it.
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    source: CertSource,
    metrics: Arc<Metrics>,
    seen: Mutex<SeenState>,
    checks: AtomicU64,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("source", &self.source)
            .finish()
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let c = std::fs::read(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
    let k = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    Ok((c, k))
}

/// Errors loading the initial pair.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Read(String),
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

impl CertStore {
    /// Loads the initial pair; fails if it is unusable.
    pub fn load(source: CertSource, metrics: Arc<Metrics>) -> Result<Arc<Self>, TlsError> {
        let (pair, bytes) = match &source {
            CertSource::Files { cert, key } => {
                let (c, k) = read_pair(cert, key).map_err(TlsError::Read)?;
                let pair = certs::load_pair(
                    &c,
                    &k,
                    &cert.display().to_string(),
                    &key.display().to_string(),
                    certs::now_unix(),
                )?;
                (pair, Some((c, k)))
            }
            CertSource::Memory { cert_pem, key_pem } => (
                certs::load_pair(
                    cert_pem.as_bytes(),
                    key_pem.as_bytes(),
                    "ephemeral certificate",
                    "ephemeral key",
                    certs::now_unix(),
                )?,
                None,
            ),
        };
        if let Some(na) = pair.not_after {
            metrics.cert_expiry.set(na);
        }
        Ok(Arc::new(CertStore {
            current: RwLock::new(pair.key),
            source,
            metrics,
            seen: Mutex::new(SeenState {
                bytes,
                read_error: None,
            }),
            checks: AtomicU64::new(0),
        }))
    }

    /// The pair handed to new handshakes.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn install(&self, pair: LoadedPair) {
        match self.current.write() {
            Ok(mut g) => *g = pair.key,
            Err(poisoned) => *poisoned.into_inner() = pair.key,
        }
        if let Some(na) = pair.not_after {
            self.metrics.cert_expiry.set(na);
        }
        self.metrics.cert_reloads.inc();
    }

    /// Re-reads the files; installs a changed, valid pair. Returns true if a new pair was
    /// installed.
    pub fn reload(&self) -> bool {
        let CertSource::Files { cert, key } = &self.source else {
            return false;
        };
        self.checks.fetch_add(1, Ordering::Relaxed);
        let mut seen = match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (c, k) = match read_pair(cert, key) {
            Ok(b) => b,
            Err(e) => {
                if seen.read_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "certificate reload failed; keeping the current certificate");
                    self.metrics.cert_reload_failures.inc();
                    seen.read_error = Some(e);
                }
                return false;
            }
        };
        seen.read_error = None;
        if seen
            .bytes
            .as_ref()
            .is_some_and(|(oc, ok)| *oc == c && *ok == k)
        {
            return false;
        }
        let result = certs::load_pair(
            &c,
            &k,
            &cert.display().to_string(),
            &key.display().to_string(),
            certs::now_unix(),
        );
        seen.bytes = Some((c, k));
        match result {
            Ok(pair) => {
                tracing::info!(
                    cert = %cert.display(),
                    not_after = pair.not_after.unwrap_or(0),
                    "loaded new serving certificate"
                );
                self.install(pair);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "new certificate pair rejected; keeping the current certificate");
                self.metrics.cert_reload_failures.inc();
                false
            }
        }
    }

    /// How many times the files were checked (watcher events and polls).
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Directories to watch (the parents of the certificate and key).
    fn watch_dirs(&self) -> Vec<PathBuf> {
        let CertSource::Files { cert, key } = &self.source else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = [cert, key]
            .iter()
            .map(|p| match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        dirs.dedup();
        dirs
    }

    /// Watches the certificate directories and polls every `poll`, reloading on change,
    /// until `stop` turns true.
    pub async fn watch(self: Arc<Self>, poll: Duration, mut stop: watch::Receiver<bool>) {
        let dirs = self.watch_dirs();
        if dirs.is_empty() {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let watcher = {
            use notify::Watcher;
            let tx = tx.clone();
            match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
                if let Ok(ev) = ev
                    && is_change(&ev.kind)
                {
                    let _ = tx.send(());
                }
            }) {
                Ok(mut w) => {
                    for d in &dirs {
                        if let Err(e) = w.watch(d, notify::RecursiveMode::NonRecursive) {
                            tracing::warn!(dir = %d.display(), error = %e, "cannot watch certificate directory; relying on polling");
                        }
                    }
                    Some(w)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "file watcher unavailable; relying on polling");
                    None
                }
            }
        };
        // Close the window between the initial load and the watcher start.
        let store = self.clone();
        let _ = tokio::task::spawn_blocking(move || store.reload()).await;
        let mut tick = tokio::time::interval(poll.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => {}
                got = rx.recv() => {
                    if got.is_none() { break; }
                    // Let a burst of events (symlink swap, two files written) settle.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    while rx.try_recv().is_ok() {}
                }
            }
            if *stop.borrow() {
                break;
            }
            let store = self.clone();
            let _ = tokio::task::spawn_blocking(move || store.reload()).await;
        }
        drop(watcher);
    }
}

/// Whether a file event can mean new content. Opens and reads are ignored: our own reloads
/// open the files, and reacting to that would reload in a loop.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// rustls resolver over a [`CertStore`].
#[derive(Debug)]
pub struct Resolver(pub Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

/// TLS 1.2 + 1.3 (ring), ALPN h2 and http/1.1, certificate from `store`.
pub fn server_config(store: Arc<CertStore>) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(store)));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
