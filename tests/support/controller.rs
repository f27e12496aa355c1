//! `raygate autoscale run` as the real binary for the end-to-end tests (`tests/e2e_autoscale.rs`,
//! `tests/e2e_autoscale_ray.rs`), against the control plane of `support/controlplane.rs`.
//!
//! Include next to it:
//! `#[path = "support/controlplane.rs"] mod controlplane;`
//! `#[path = "support/controller.rs"] mod controller;`
#![allow(dead_code)]

use super::controlplane;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `scaleStrategy.workersToDelete` of a worker group (empty when absent).
pub fn workers_to_delete(group: &Value) -> Vec<String> {
    group["scaleStrategy"]["workersToDelete"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The controller as the real binary, stopped (by PID: SIGTERM, then SIGKILL) when dropped; its
/// log is printed when a test panics.
pub struct Controller {
    pub proc: controlplane::KeptProcess,
    pub log: PathBuf,
    pub admin_port: u16,
    _dir: tempfile::TempDir,
}

impl Controller {
    /// `raygate autoscale run --namespace NS --lease-namespace NS --admin-listen 127.0.0.1:<free>`
    /// plus `extra`; `--interval 300ms` and `--gcs-timeout 1s` unless `extra` sets them.
    /// `RAYGATE_TEST_BIN` picks another binary, `RAYGATE_TEST_LOG` its `RUST_LOG` (`info`).
    pub fn start(ns: &str, extra: &[&str]) -> Controller {
        Self::start_as(ns, ns, controlplane::shared().kubeconfig_path(), extra)
    }

    /// As [`Controller::start`], with the credentials of `kubeconfig` and the Lease in `lease_ns`.
    pub fn start_as(ns: &str, lease_ns: &str, kubeconfig: &Path, extra: &[&str]) -> Controller {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("controller.log");
        let admin_port = controlplane::pick_port();
        let mut args: Vec<String> = [
            "autoscale",
            "run",
            "--namespace",
            ns,
            "--lease-namespace",
            lease_ns,
            "--admin-listen",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("127.0.0.1:{admin_port}"));
        if !extra.contains(&"--interval") {
            args.extend(["--interval".to_string(), "300ms".to_string()]);
        }
        if !extra.contains(&"--gcs-timeout") {
            args.extend(["--gcs-timeout".to_string(), "1s".to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let kc = kubeconfig.to_string_lossy().to_string();
        let log_filter = std::env::var("RAYGATE_TEST_LOG").unwrap_or_else(|_| "info".into());
        // RAYGATE_TEST_BIN: a private copy of the binary when several checkouts share one
        // target dir (their builds overwrite target/debug/raygate).
        let bin = std::env::var_os("RAYGATE_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_raygate")));
        let proc = controlplane::KeptProcess::spawn(
            &bin,
            &args,
            &[("KUBECONFIG", &kc), ("RUST_LOG", &log_filter)],
            &log,
        )
        .expect("spawn raygate autoscale run");
        Controller {
            proc,
            log,
            admin_port,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The admin port's `/metrics` text (empty when unreachable).
    pub fn metrics(&self) -> String {
        controlplane::plain_get(self.admin_port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// Per-cluster iterations run so far (all clusters together), from the metrics.
    pub fn iterations(&self) -> u64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix("raygate_autoscaler_iteration_duration_seconds_count "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- raygate autoscale run log (tail) ---\n{}",
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
    }
}
