//! `raygate serve`: the HTTPS admission + conversion webhook.

use crate::cli::logbuf::{BatchedStderr, FlushGuard};
use crate::violation::{FeatureGates, ValidateOptions};
use crate::webhook::{Server, ServerOptions, TlsMode};
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Serve validate, mutate and convert over HTTPS (TLS 1.2/1.3, HTTP/1.1 and HTTP/2).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// HTTPS listen address.
    #[arg(long, default_value = "0.0.0.0:9443", env = "RAYGATE_LISTEN")]
    pub listen: SocketAddr,
    /// Plain-HTTP admin listen address (/healthz, /readyz, /metrics).
    #[arg(long, default_value = "0.0.0.0:8080", env = "RAYGATE_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// PEM certificate chain (leaf first) [default: certs/tls.crt]. Watched for changes.
    #[arg(long, env = "RAYGATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key [default: certs/tls.key]. Watched for changes.
    #[arg(long, env = "RAYGATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// KubeRay feature gates, e.g. `RayClusterNetworkPolicy=true,RayClusterMTLS=false`.
    #[arg(long, default_value = "", env = "RAYGATE_FEATURE_GATES")]
    pub feature_gates: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "RAYGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Largest accepted request body, bytes [default: the API server's own limit, 3 MiB].
    #[arg(long, default_value_t = crate::webhook::server::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Request bodies over 256 KiB buffered and handled at once (the memory bound, see
    /// docs/hardening.md).
    #[arg(long, default_value_t = crate::webhook::server::DEFAULT_LARGE_CONCURRENCY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub large_concurrency: usize,
    /// Large requests that may wait for a slot; more are answered 429.
    #[arg(long, default_value_t = crate::webhook::server::DEFAULT_LARGE_QUEUE)]
    pub large_queue: usize,
    /// HTTPS connections open at once (at the cap the oldest is closed).
    #[arg(long, default_value_t = crate::webhook::server::DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Admin connections open at once (at the cap the oldest is closed).
    #[arg(long, default_value_t = crate::webhook::server::DEFAULT_ADMIN_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub admin_max_connections: usize,
    /// Request timeout, seconds (keep below the webhook timeoutSeconds).
    #[arg(long, default_value_t = 8.0)]
    pub request_timeout: f64,
    /// After SIGTERM, keep serving (not ready) this many seconds before closing the listener.
    #[arg(long, default_value_t = 0.0)]
    pub shutdown_delay: f64,
    /// TLS handshake and HTTP header timeout, seconds, on both ports (an idle keep-alive
    /// connection is closed after it too).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Longest wait for in-flight requests at shutdown, seconds.
    #[arg(long, default_value_t = 25.0)]
    pub drain_timeout: f64,
    /// Certificate poll interval, seconds (a directory watcher reacts sooner).
    #[arg(long, default_value_t = 5.0)]
    pub cert_poll_interval: f64,
    /// Threads that run the handlers, first in first out; 0 runs them on the I/O threads
    /// [default: the CPUs available].
    #[arg(long, env = "RAYGATE_HANDLER_THREADS")]
    pub handler_threads: Option<usize>,
    /// Async runtime threads for TLS and HTTP [default: half the CPUs available, at least 1].
    #[arg(long, env = "RAYGATE_IO_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub io_threads: Option<u16>,
    /// Image of raygate's autoscaler sidecar: the mutating webhook makes it the
    /// `autoscalerOptions.image` of RayClusters annotated `raygate.io/autoscaler: sidecar`
    /// (docs/webhook.md). Without it that annotation only gets a warning.
    #[arg(long, env = "RAYGATE_SIDECAR_IMAGE")]
    pub sidecar_image: Option<String>,
    /// KubeRay version the sidecar is filled in for: from 1.7 also `autoscalerOptions.command`
    /// and `args` (`/usr/local/bin/raygate autoscale sidecar`); older versions have no such
    /// fields and run `ray kuberay-autoscaler ...` through the image's `ray` entry point.
    #[arg(long, default_value = "1.7", env = "RAYGATE_SIDECAR_KUBERAY_VERSION")]
    pub sidecar_kuberay_version: String,
}

/// `MAJOR.MINOR[.PATCH]` (a leading `v` allowed) as (major, minor).
fn kuberay_version(v: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--sidecar-kuberay-version {v:?}: expected MAJOR.MINOR[.PATCH], e.g. 1.7");
    let t = v.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    let mut it = t.split('.');
    let major = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let minor = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    match (it.next(), it.next()) {
        (None, _) => {}
        (Some(p), None) if p.parse::<u32>().is_ok() => {}
        _ => return Err(bad()),
    }
    Ok((major, minor))
}

fn secs(name: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|e| format!("--{name} {v}: {e}"))
}

impl ServeArgs {
    /// The typed options this command line stands for.
    pub fn to_options(&self) -> Result<ServerOptions, String> {
        let gates = FeatureGates::parse(&self.feature_gates)?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (None, None) => TlsMode::FilesOrEphemeral {
                cert: PathBuf::from("certs/tls.crt"),
                key: PathBuf::from("certs/tls.key"),
            },
            (Some(c), Some(k)) => TlsMode::Files {
                cert: c.clone(),
                key: k.clone(),
            },
            _ => return Err("give both --tls-cert and --tls-key, or neither".into()),
        };
        let sidecar_image = match self.sidecar_image.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(i) if i.chars().any(char::is_whitespace) => {
                return Err(format!(
                    "--sidecar-image {i:?}: an image reference has no blanks"
                ));
            }
            Some(i) => Some(i.to_string()),
        };
        let opt_in = crate::defaulting::OptIn {
            sidecar_image,
            sidecar_command: kuberay_version(&self.sidecar_kuberay_version)? >= (1, 7),
        };
        Ok(ServerOptions {
            listen: self.listen,
            opt_in,
            admin_listen: self.admin_listen,
            tls,
            validate: ValidateOptions {
                gates,
                ..Default::default()
            },
            body_limit: self.body_limit,
            large_concurrency: self.large_concurrency,
            large_queue: self.large_queue,
            max_connections: self.max_connections,
            admin_max_connections: self.admin_max_connections,
            request_timeout: secs("request-timeout", self.request_timeout)?,
            handshake_timeout: secs("header-timeout", self.header_timeout)?,
            shutdown_delay: secs("shutdown-delay", self.shutdown_delay)?,
            drain_timeout: secs("drain-timeout", self.drain_timeout)?,
            cert_poll_interval: secs("cert-poll-interval", self.cert_poll_interval)?,
            handler_threads: self
                .handler_threads
                .unwrap_or_else(crate::webhook::server::default_handler_threads),
            ..ServerOptions::default()
        })
    }
}

/// Logs to stderr through [`BatchedStderr`] (one line per request: batched writes). The guard
/// writes what is still pending when dropped.
fn init_logging(format: LogFormat) -> FlushGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = BatchedStderr::start();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .fmt_fields(crate::cli::logfmt::EscapedFields)
            .try_init(),
    };
    guard
}

/// Runs the webhook until SIGTERM/SIGINT.
pub fn run(args: ServeArgs) -> ExitCode {
    let _flush = init_logging(args.log_format);
    let opts = match args.to_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::webhook::server::raise_fd_limit() {
        Ok((old, new)) if old != new => {
            tracing::info!(
                old,
                new,
                "raised the open-files soft limit to the hard limit"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
    let io_threads = args
        .io_threads
        .map_or_else(crate::webhook::server::default_io_threads, usize::from);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let server = match Server::bind(opts).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the webhook");
                return ExitCode::FAILURE;
            }
        };
        let addr = server
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let admin = server
            .admin_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(addr = %addr, admin_addr = %admin, "webhook listening");
        match server.run(crate::signal::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "webhook failed");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn opts(argv: &[&str]) -> Result<ServerOptions, String> {
        let mut all = vec!["raygate"];
        all.extend_from_slice(argv);
        Cli::try_parse_from(all)
            .map_err(|e| e.to_string())?
            .serve
            .to_options()
    }

    #[test]
    fn sidecar_flags_make_the_opt_in() {
        let o = opts(&[]).unwrap().opt_in;
        assert_eq!(o.sidecar_image, None);
        assert!(o.sidecar_command, "KubeRay 1.7 by default");
        let o = opts(&["--sidecar-image", "r/raygate:1"]).unwrap().opt_in;
        assert_eq!(o.sidecar_image.as_deref(), Some("r/raygate:1"));
        assert!(o.sidecar_command);
        for (v, command) in [
            ("1.6", false),
            ("v1.6.2", false),
            ("1.7.0", true),
            ("2.0", true),
        ] {
            let o = opts(&["--sidecar-image=i", "--sidecar-kuberay-version", v]).unwrap();
            assert_eq!(o.opt_in.sidecar_command, command, "{v}");
        }
        assert_eq!(
            opts(&["--sidecar-image="]).unwrap().opt_in.sidecar_image,
            None
        );
        for bad in ["1", "1.x", "1.7.0.1", "seven"] {
            let e = opts(&["--sidecar-kuberay-version", bad]).unwrap_err();
            assert!(
                e.contains("--sidecar-kuberay-version") && e.contains("MAJOR.MINOR"),
                "{e}"
            );
        }
        let e = opts(&["--sidecar-image", "a b"]).unwrap_err();
        assert!(e.contains("--sidecar-image"), "{e}");
    }
}
