//! The HTTPS server: tokio-rustls + hyper-util `auto` (HTTP/1.1 and HTTP/2 via ALPN) serving
//! an axum `Router`, plus the plain-HTTP admin listener.
//!
//! Use [`Server::bind`] to load certificates and bind both listeners (pass port 0 and read the
//! bound addresses back), then [`Server::run`] with a shutdown future. On shutdown the server
//! reports not-ready, keeps serving for `shutdown_delay` (so endpoints can be removed), stops
//! accepting, lets in-flight requests finish (up to `drain_timeout`), and returns.

use crate::certs;
use crate::model::Kind;
use crate::violation::ValidateOptions;
use crate::webhook::admission::{self, AdmissionConfig, Reply};
use crate::webhook::budget::{BodyError, Budget, BudgetLimits, ConnSlot, ConnSlots};
use crate::webhook::metrics::{self, Metrics};
use crate::webhook::pool::HandlerPool;
use crate::webhook::tls::{CertSource, CertStore, TlsError, server_config};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

pub const VALIDATE_PATH: &str = "/validate-ray-io-v1-raycluster";
pub const MUTATE_PATH: &str = "/mutate-ray-io-v1-raycluster";
pub const CONVERT_PATH: &str = "/convert";
/// Default body limit: the API server's own request-body limit, 3 MiB (kube-apiserver
/// `staging/src/k8s.io/apiserver/pkg/server/config.go`, `NewConfig`:
/// `MaxRequestBodyBytes: int64(3 * 1024 * 1024)`, twice etcd's recommended 1.5 MiB request).
/// Nothing the API server accepts from a client is larger; an UPDATE review carries `object`
/// and `oldObject`, both stored objects, so each is under etcd's 1.5 MiB request limit.
pub const DEFAULT_BODY_LIMIT: usize = 3 * 1024 * 1024;
/// Bodies above this are large: they take one of `large_concurrency` slots and are handled on
/// the blocking pool rather than the handler threads (see [`crate::webhook::budget`]).
pub const INLINE_BODY_MAX: usize = 256 * 1024;
/// Default number of large bodies buffered and handled at once.
pub const DEFAULT_LARGE_CONCURRENCY: usize = 1;
/// Default number of large requests waiting for a slot before more are answered 429.
pub const DEFAULT_LARGE_QUEUE: usize = 16;
/// Default bytes of small bodies buffered at once.
pub const DEFAULT_SMALL_BODY_BUDGET: usize = 16 * 1024 * 1024;
/// Default cap on HTTPS connections (the API server needs a handful).
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Default cap on admin connections (probes and a metrics scraper).
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 16;
/// HTTP/2 flow control: what a client may send ahead of the handler, per stream. A request
/// that waits (for a large-request slot or the small-body budget) leaves what its client sent
/// unread, and unread bytes hold the connection's window as well as the stream's. So the
/// connection window is [`H2_MAX_STREAMS`] stream windows: however many streams of a connection
/// wait, the stream being read can always be sent to. (With one 256 KiB window for both, a
/// single waiting large review took the whole connection window and stalled every request on
/// its connection until the request timeout: 408 for all 16 hostile reviews in flight in
/// `benches/webhook_hostile.rs`; the API server multiplexes every review on its connections.)
/// Unread request bytes stay under `H2_CONN_WINDOW` a connection (512 KiB; 32 MiB at the
/// 64-connection cap). A normal review (~10 KB) fits in one stream window.
const H2_STREAM_WINDOW: u32 = 16 * 1024;
/// Concurrent streams per HTTP/2 connection; a client that needs more opens another connection
/// (Go's HTTP/2 transport, the API server's, does).
const H2_MAX_STREAMS: u32 = 32;
const H2_CONN_WINDOW: u32 = H2_STREAM_WINDOW * H2_MAX_STREAMS;

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// Use these files; fail if they are missing or invalid.
    Files { cert: PathBuf, key: PathBuf },
    /// Use these files if both exist, else generate an ephemeral CA + certificate for
    /// `localhost`/`127.0.0.1` (the `serve` default with `certs/tls.crt`, `certs/tls.key`).
    FilesOrEphemeral { cert: PathBuf, key: PathBuf },
    /// Always generate an ephemeral certificate.
    Ephemeral,
}

/// Everything `raygate serve` can be told; constructible in tests.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls: TlsMode,
    pub validate: ValidateOptions,
    /// The `raygate.io/autoscaler` opt-in of the mutating webhook (`--sidecar-image`, ...).
    pub opt_in: crate::defaulting::OptIn,
    pub body_limit: usize,
    /// Whole-request timeout (body read + decision); keep below the webhook `timeoutSeconds`.
    pub request_timeout: Duration,
    /// TLS handshake and first-bytes timeout.
    pub handshake_timeout: Duration,
    /// After the shutdown signal: serve (not ready) this long before closing the listener.
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight requests after the listener closes.
    pub drain_timeout: Duration,
    /// Certificate poll interval (the directory watcher is the fast path).
    pub cert_poll_interval: Duration,
    /// Handler threads (see [`crate::webhook::pool`]); 0 runs handlers on the runtime workers.
    pub handler_threads: usize,
    /// Large bodies (over [`INLINE_BODY_MAX`]) buffered and handled at once.
    pub large_concurrency: usize,
    /// Large requests that may wait for a slot; more are answered 429.
    pub large_queue: usize,
    /// Bytes of small bodies buffered at once.
    pub small_body_budget: usize,
    /// HTTPS connections open at once; at the cap the oldest is closed.
    pub max_connections: usize,
    /// Admin connections open at once; at the cap the oldest is closed.
    pub admin_max_connections: usize,
}

/// The default number of handler threads: the CPUs this process may use.
pub fn default_handler_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The default number of async runtime (I/O) threads: half the CPUs, at least one. TLS and
/// HTTP/2 take about a third of a request's CPU; more I/O threads than that only compete with
/// the handler threads (and each thread's allocator heap adds to the RSS).
pub fn default_io_threads() -> usize {
    (default_handler_threads() / 2).max(1)
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: SocketAddr::from(([0, 0, 0, 0], 9443)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tls: TlsMode::FilesOrEphemeral {
                cert: PathBuf::from("certs/tls.crt"),
                key: PathBuf::from("certs/tls.key"),
            },
            validate: ValidateOptions::default(),
            opt_in: crate::defaulting::OptIn::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: Duration::from_secs(8),
            handshake_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(25),
            cert_poll_interval: Duration::from_secs(5),
            handler_threads: default_handler_threads(),
            large_concurrency: DEFAULT_LARGE_CONCURRENCY,
            large_queue: DEFAULT_LARGE_QUEUE,
            small_body_budget: DEFAULT_SMALL_BODY_BUDGET,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            admin_max_connections: DEFAULT_ADMIN_MAX_CONNECTIONS,
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "TLS certificate {cert} or key {key} is missing (give both, or neither to use an ephemeral certificate)"
    )]
    MissingCert { cert: String, key: String },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot generate ephemeral certificate: {0}")]
    Generate(#[from] certs::CertError),
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared by handlers.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<AdmissionConfig>,
    pub metrics: Arc<Metrics>,
    /// Unix seconds at which readiness was lost (0 = ready).
    pub ready: Arc<AtomicBool>,
    /// Where the handlers run (None: on the runtime worker that serves the request).
    pub pool: Option<Arc<HandlerPool>>,
    /// Room for request bodies (see [`crate::webhook::budget`]).
    pub budget: Arc<Budget>,
}

/// A bound, not yet running server.
pub struct Server {
    opts: ServerOptions,
    listener: TcpListener,
    admin_listener: TcpListener,
    store: Arc<CertStore>,
    acceptor: TlsAcceptor,
    state: AppState,
    ephemeral_ca_pem: Option<String>,
}

impl Server {
    /// Loads (or generates) the certificate and binds both listeners.
    pub async fn bind(opts: ServerOptions) -> Result<Server, ServeError> {
        let metrics = Arc::new(Metrics::new());
        let (source, ephemeral_ca_pem) = resolve_tls(&opts.tls)?;
        let store = CertStore::load(source, metrics.clone())?;
        let acceptor = TlsAcceptor::from(Arc::new(server_config(store.clone())?));
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.listen,
                source,
            })?;
        let admin_listener = TcpListener::bind(opts.admin_listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.admin_listen,
                source,
            })?;
        let state = AppState {
            cfg: Arc::new(AdmissionConfig {
                validate: opts.validate.clone(),
                opt_in: opts.opt_in.clone(),
            }),
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
            pool: match opts.handler_threads {
                0 => None,
                n => Some(Arc::new(HandlerPool::start(n)?)),
            },
            budget: Arc::new(Budget::new(BudgetLimits {
                body_limit: opts.body_limit,
                large_threshold: INLINE_BODY_MAX,
                large_concurrency: opts.large_concurrency,
                large_queue: opts.large_queue,
                small_bytes: opts.small_body_budget,
            })),
        };
        Ok(Server {
            opts,
            listener,
            admin_listener,
            store,
            acceptor,
            state,
            ephemeral_ca_pem,
        })
    }

    /// The bound HTTPS address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin_listener.local_addr()
    }

    /// The CA (PEM) of an ephemeral certificate, if one was generated.
    pub fn ephemeral_ca_pem(&self) -> Option<&str> {
        self.ephemeral_ca_pem.as_deref()
    }

    /// The request-body budget (for tests: [`Budget::large_peak`]).
    pub fn budget(&self) -> Arc<Budget> {
        self.state.budget.clone()
    }

    /// The certificate store (for tests: force a reload).
    pub fn cert_store(&self) -> Arc<CertStore> {
        self.store.clone()
    }

    /// Serves until `shutdown` completes, then drains and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let Server {
            opts,
            listener,
            admin_listener,
            store,
            acceptor,
            state,
            ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);

        let watcher = tokio::spawn(
            store
                .clone()
                .watch(opts.cert_poll_interval, stop_rx.clone()),
        );

        let admin_task = tokio::spawn(serve_admin(
            admin_listener,
            admin_router(state.clone()),
            ConnSlots::new(opts.admin_max_connections),
            opts.handshake_timeout,
            stop_rx.clone(),
        ));
        let slots = ConnSlots::new(opts.max_connections);

        let router = webhook_router(state.clone(), &opts);
        let service = TowerToHyperService::new(router);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(opts.handshake_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .initial_connection_window_size(H2_CONN_WINDOW)
            .initial_stream_window_size(H2_STREAM_WINDOW)
            .max_concurrent_streams(H2_MAX_STREAMS);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        state.ready.store(true, Ordering::SeqCst);

        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    spawn_connection(tcp, peer, &acceptor, &builder, &service, graceful.watcher(), opts.handshake_timeout, slots.admit());
                }
            }
        }

        // Shutdown: not ready, keep serving for the delay, then stop accepting and drain.
        state.ready.store(false, Ordering::SeqCst);
        tracing::info!(
            delay_ms = opts.shutdown_delay.as_millis() as u64,
            "shutdown signal received; readiness off"
        );
        if !opts.shutdown_delay.is_zero() {
            let deadline = tokio::time::sleep(opts.shutdown_delay);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    accepted = listener.accept() => {
                        if let Ok((tcp, peer)) = accepted {
                            spawn_connection(tcp, peer, &acceptor, &builder, &service, graceful.watcher(), opts.handshake_timeout, slots.admit());
                        }
                    }
                }
            }
        }
        drop(listener);
        let open = graceful.count();
        tracing::info!(open_connections = open, "listener closed; draining");
        if tokio::time::timeout(opts.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout reached; closing remaining connections");
        }
        let _ = stop_tx.send(true);
        let _ = admin_task.await;
        let _ = watcher.await;
        tracing::info!("webhook stopped");
        Ok(())
    }
}

type Service = TowerToHyperService<Router>;

#[allow(clippy::too_many_arguments)]
fn spawn_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    builder: &Arc<auto::Builder<TokioExecutor>>,
    service: &Service,
    watcher: hyper_util::server::graceful::Watcher,
    hs_timeout: Duration,
    mut slot: ConnSlot,
) {
    let _ = tcp.set_nodelay(true);
    let acceptor = acceptor.clone();
    let builder = builder.clone();
    let service = service.clone();
    tokio::spawn(async move {
        let served = async {
            let Some(tls) = handshake(tcp, peer, acceptor, hs_timeout).await else {
                return;
            };
            let conn = builder
                .serve_connection(TokioIo::new(tls), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        };
        tokio::select! {
            _ = served => {}
            _ = &mut slot.evicted => {
                tracing::debug!(%peer, "connection closed: connection cap reached, oldest first");
            }
        }
        drop(slot);
    });
}

/// The admin listener: HTTP/1.1 with the TLS port's header timeout (which also closes idle
/// keep-alive connections), a connection cap (oldest closed first), until `stop`.
async fn serve_admin(
    listener: TcpListener,
    router: Router,
    slots: Arc<ConnSlots>,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            _ = async { drop(stop.wait_for(|s| *s).await) } => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let mut slot = slots.admit();
                let conn = builder.serve_connection(TokioIo::new(tcp), service.clone());
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    tokio::select! {
                        r = conn => {
                            if let Err(e) = r {
                                tracing::debug!(%peer, error = %e, "admin connection ended with an error");
                            }
                        }
                        _ = &mut slot.evicted => {
                            tracing::debug!(%peer, "admin connection closed: connection cap reached, oldest first");
                        }
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}

/// Raises the soft limit on open files to the hard limit; returns (old soft, new soft).
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let old = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok((old, lim.rlim_cur))
    }
}

fn resolve_tls(mode: &TlsMode) -> Result<(CertSource, Option<String>), ServeError> {
    let ephemeral = || -> Result<(CertSource, Option<String>), ServeError> {
        let g = certs::generate(
            "raygate-webhook (ephemeral)",
            &["localhost".to_string()],
            &["127.0.0.1"
                .parse()
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))],
            7,
            7,
        )?;
        tracing::warn!(
            ca_bundle = %g.ca_bundle(),
            "no serving certificate found; generated an ephemeral CA and a certificate for localhost/127.0.0.1 (clients must trust this caBundle)"
        );
        Ok((
            CertSource::Memory {
                cert_pem: g.cert_pem.clone(),
                key_pem: g.key_pem.clone(),
            },
            Some(g.ca_cert_pem),
        ))
    };
    match mode {
        TlsMode::Ephemeral => ephemeral(),
        TlsMode::Files { cert, key } => Ok((
            CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            None,
        )),
        TlsMode::FilesOrEphemeral { cert, key } => match (cert.exists(), key.exists()) {
            (true, true) => Ok((
                CertSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                None,
            )),
            (false, false) => ephemeral(),
            _ => Err(ServeError::MissingCert {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
            }),
        },
    }
}

const HTTPS_ONLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 53\r\n\r\nThis port serves HTTPS only (TLS 1.2+): use https://\n";

/// Rejects plain HTTP with a readable 400, then performs the TLS handshake with a timeout.
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return None,
    }
    if first[0] != 0x16 {
        // Not a TLS handshake record: most likely plain HTTP.
        let mut tcp = tcp;
        tracing::debug!(%peer, "plain-text request on the TLS port rejected");
        let _ = tcp.write_all(HTTPS_ONLY).await;
        let _ = tcp.shutdown().await;
        return None;
    }
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// The webhook endpoints with body limit and request timeout: validate and mutate for each of
/// [`Kind::ALL`] (`/validate-ray-io-v1-rayjob`, …; see [`admission::validate_path`]) and
/// `/convert`.
pub fn webhook_router(state: AppState, opts: &ServerOptions) -> Router {
    let mut router = Router::new();
    for kind in Kind::ALL {
        router = router
            .route(
                admission::validate_path(kind),
                post(move |State(state): State<AppState>, req: Request| {
                    handle(state, Endpoint::Validate(kind), req)
                }),
            )
            .route(
                admission::mutate_path(kind),
                post(move |State(state): State<AppState>, req: Request| {
                    handle(state, Endpoint::Mutate(kind), req)
                }),
            );
    }
    router
        .route(CONVERT_PATH, post(convert_h))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            opts.request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            instrument,
        ))
        .with_state(state)
}

/// controller-runtime's instrumentation of a webhook: in flight while it runs, then counted by
/// HTTP status code with its latency; outside the timeout, so a 408 is counted too.
async fn instrument(
    State(state): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let path = match req.uri().path() {
        VALIDATE_PATH => VALIDATE_PATH,
        MUTATE_PATH => MUTATE_PATH,
        CONVERT_PATH => CONVERT_PATH,
        _ => return next.run(req).await,
    };
    let _in_flight = state.metrics.start(path);
    let start = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .answered(path, resp.status().as_u16(), start.elapsed());
    resp
}

#[derive(Clone, Copy)]
enum Endpoint {
    Validate(Kind),
    Mutate(Kind),
    Convert,
}

impl Endpoint {
    /// The `endpoint` label: `validate`/`mutate` for RayCluster (as before there were other
    /// kinds), `validate-rayjob`, `mutate-rayservice`, … for the others.
    fn name(self) -> &'static str {
        match self {
            Endpoint::Validate(k) => metrics::validate_endpoint(k),
            Endpoint::Mutate(k) => metrics::mutate_endpoint(k),
            Endpoint::Convert => "convert",
        }
    }
}

fn dispatch(ep: Endpoint, body: &[u8], cfg: &AdmissionConfig) -> Reply {
    match ep {
        Endpoint::Validate(k) => admission::validate_kind(k, body, cfg),
        Endpoint::Mutate(k) => admission::mutate_kind(k, body, cfg),
        Endpoint::Convert => admission::convert(body),
    }
}

async fn handle(state: AppState, ep: Endpoint, req: Request) -> Response {
    let start = Instant::now();
    let content_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let h1 = req.version() < axum::http::Version::HTTP_2;
    let mut req_body = req.into_body();
    let body = match state.budget.admit(content_length, &mut req_body).await {
        Ok(b) => b,
        Err(e) => {
            if h1 && matches!(e, BodyError::TooLarge { .. }) {
                // HTTP/1.1 has no way to stop an upload but closing the connection, and a
                // client still writing then sees the reset, not the reply: read the rest of
                // the body and throw it away (bounded in bytes and time) first.
                let _ = tokio::time::timeout(
                    DRAIN_TIME,
                    discard(
                        &mut req_body,
                        DRAIN_MAX.max(state.budget.limits().body_limit),
                    ),
                )
                .await;
            }
            return refused(&state, ep, e, start, req_body);
        }
    };
    // Large bodies take the blocking pool, so one huge UPDATE does not hold up the requests
    // queued behind it on the handler threads; their slot (in `body`) is held until the reply
    // is built.
    let ran = if body.large {
        let cfg = state.cfg.clone();
        tokio::task::spawn_blocking(move || dispatch(ep, &body.bytes, &cfg))
            .await
            .map_err(|e| e.to_string())
    } else if let Some(pool) = &state.pool {
        let cfg = state.cfg.clone();
        pool.run(move || dispatch(ep, &body.bytes, &cfg))
            .await
            .map_err(|e| e.to_string())
    } else {
        Ok(dispatch(ep, &body.bytes, &state.cfg))
    };
    let reply = match ran {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(endpoint = ep.name(), error = %e, "request handler failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("handler failed: {e}"),
            )
                .into_response();
        }
    };
    let elapsed = start.elapsed();
    let o = &reply.outcome;
    let operation = if o.operation.is_empty() {
        "UNKNOWN"
    } else {
        o.operation
    };
    state
        .metrics
        .observe(ep.name(), operation, o.decision, elapsed);
    for rule in &o.violations {
        state.metrics.violation(rule);
    }
    tracing::info!(
        target: "raygate::webhook::request",
        endpoint = ep.name(),
        uid = %o.uid,
        namespace = %o.namespace,
        name = %o.name,
        operation,
        decision = o.decision,
        dry_run = o.dry_run,
        violations = %o.violated_rules(),
        detail = %o.detail,
        duration_us = elapsed.as_micros() as u64,
        "request"
    );
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        reply.body,
    )
        .into_response()
}

/// A body that was not admitted: 413 (too large), 429 (large-request queue full) or 400, with
/// an AdmissionReview (or ConversionReview) body saying why. The uid is unknown: the body was
/// not read.
///
/// The unread request body is dropped only after the reply has been sent: on HTTP/2 the
/// stream is then reset with NO_ERROR (RFC 9113 §8.1: "stop sending, the response is
/// complete") instead of CANCEL before the reply, which left the client with no status.
fn refused(
    state: &AppState,
    ep: Endpoint,
    e: BodyError,
    start: Instant,
    unread: axum::body::Body,
) -> Response {
    let (status, reason, msg) = match e {
        BodyError::TooLarge { limit } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("request body is larger than the webhook's limit of {limit} bytes"),
        ),
        BodyError::Busy => (
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "too many large requests in progress; retry later".to_string(),
        ),
        BodyError::Read(e) => (
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("cannot read the request body: {e}"),
        ),
    };
    let reply = match ep {
        Endpoint::Convert => admission::conversion_refused(status.as_u16(), reason, msg),
        _ => admission::admission_refused(status.as_u16(), reason, msg),
    };
    let o = &reply.outcome;
    state
        .metrics
        .observe(ep.name(), "UNKNOWN", o.decision, start.elapsed());
    tracing::warn!(
        target: "raygate::webhook::request",
        endpoint = ep.name(),
        status = status.as_u16(),
        detail = %o.detail,
        "request refused"
    );
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        axum::body::Body::new(ThenDrop {
            data: Some(Bytes::from(reply.body)),
            _unread: unread,
        }),
    )
        .into_response()
}

/// Most bytes of an over-limit HTTP/1.1 body read and thrown away before the 413.
const DRAIN_MAX: usize = 16 * 1024 * 1024;
/// Longest time spent on that.
const DRAIN_TIME: Duration = Duration::from_secs(3);

async fn discard(body: &mut axum::body::Body, max: usize) {
    use http_body_util::BodyExt;
    let mut n = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(d) = frame.into_data() {
            n += d.len();
            if n > max {
                return;
            }
        }
    }
}

/// A response body that owns the unread request body until the response has been sent.
struct ThenDrop {
    data: Option<Bytes>,
    _unread: axum::body::Body,
}

impl hyper::body::Body for ThenDrop {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.data.take().map(|d| Ok(hyper::body::Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

async fn convert_h(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Endpoint::Convert, req).await
}

/// Plain-HTTP admin endpoints: `/healthz`, `/readyz`, `/metrics`.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<AppState>| async move {
                if s.ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                    )],
                    s.metrics.encode(),
                )
            }),
        )
        .with_state(state)
}
