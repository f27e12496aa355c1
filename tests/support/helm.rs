//! The Helm CLI for the chart tests (`tests/helm_chart.rs`, `tests/e2e_helm.rs`).
//!
//! Include with `#[path = "support/helm.rs"] mod helm;`. The binary is `$RAYGATE_HELM_BIN` (set by
//! `scripts/test.sh`) or what `scripts/helm-bin.sh` prints (it builds Helm from the Go module
//! proxy on first use, cached outside the clone). A missing Helm fails the test, never skips it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// `deploy/helm/raygate` in this checkout.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/raygate")
}

/// The helm binary (panics with what to run when it cannot be had).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = BIN.get_or_init(|| {
        let p = match std::env::var_os("RAYGATE_HELM_BIN") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/helm-bin.sh");
                let out = Command::new("bash")
                    .arg(script)
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| format!("cannot run {script}: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "{script} failed ({}); the chart tests need Helm built from tools/helm \
                         (Go >= 1.26 and the Go module proxy)",
                        out.status
                    ));
                }
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            }
        };
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "helm not found at {} (RAYGATE_HELM_BIN or scripts/helm-bin.sh); run \
                 `bash scripts/helm-bin.sh`",
                p.display()
            ))
        }
    });
    match r {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Output of one helm run.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `helm args...` with a private HOME-like config so no user state leaks in.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let tmp = std::env::temp_dir().join(format!("raygate-helm-home-{}", std::process::id()));
    let out = Command::new(bin())
        .args(args)
        .env("HELM_CONFIG_HOME", tmp.join("config"))
        .env("HELM_CACHE_HOME", tmp.join("cache"))
        .env("HELM_DATA_HOME", tmp.join("data"))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin().display()));
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `helm <args>` that must succeed; returns stdout.
pub fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let r = run(args);
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    assert!(
        r.ok,
        "helm {} failed:\n{}\n{}",
        shown.join(" "),
        r.stderr,
        r.stdout
    );
    r.stdout
}

/// YAML documents of a rendered manifest as JSON (empty documents skipped).
pub fn docs(yaml: &str) -> Vec<serde_json::Value> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("helm output is not YAML ({e}):\n{yaml}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `helm template <release> deploy/helm/raygate -n <ns> --set ...` as JSON documents.
pub fn template(release: &str, ns: &str, sets: &[&str]) -> Vec<serde_json::Value> {
    let chart = chart_dir();
    let mut args: Vec<String> = vec![
        "template".into(),
        release.into(),
        chart.display().to_string(),
        "--namespace".into(),
        ns.into(),
    ];
    for s in sets {
        args.push("--set".into());
        args.push(s.to_string());
    }
    docs(&ok(&args))
}

/// `webhook.url` of the combinations that use it.
pub const COMBO_URL: &str = "https://127.0.0.1:9443";
/// `certs.secret.caBundle` of the combinations in mode `secret` (any base64 renders).
pub const COMBO_USER_CA: &str = "dGVzdC1jYQ==";

#[derive(Clone, Copy, Debug)]
pub enum Autoscaler {
    Off,
    On,
    ReconcilePods,
}

/// One supported combination of values.
#[derive(Clone, Copy, Debug)]
pub struct Combo {
    pub certs: &'static str,
    pub autoscaler: Autoscaler,
    /// crdConversion.enabled + metrics.serviceMonitor.enabled + networkPolicy.enabled
    pub extras: bool,
    /// webhook.url (development clientConfig)
    pub url: bool,
}

impl Combo {
    pub fn all() -> Vec<Combo> {
        let mut v = Vec::new();
        for certs in ["self-managed", "cert-manager", "secret"] {
            for autoscaler in [Autoscaler::Off, Autoscaler::On, Autoscaler::ReconcilePods] {
                for extras in [false, true] {
                    for url in [false, true] {
                        v.push(Combo {
                            certs,
                            autoscaler,
                            extras,
                            url,
                        });
                    }
                }
            }
        }
        v
    }

    pub fn sets(&self) -> Vec<String> {
        let mut s = vec![format!("certs.mode={}", self.certs)];
        if self.certs == "secret" {
            s.push("certs.secret.name=my-tls".into());
            s.push(format!("certs.secret.caBundle={COMBO_USER_CA}"));
        }
        match self.autoscaler {
            Autoscaler::Off => {}
            Autoscaler::On => s.push("autoscaler.enabled=true".into()),
            Autoscaler::ReconcilePods => {
                s.push("autoscaler.enabled=true".into());
                s.push("autoscaler.reconcilePods=true".into());
            }
        }
        if self.extras {
            s.push("crdConversion.enabled=true".into());
            s.push("metrics.serviceMonitor.enabled=true".into());
            s.push("networkPolicy.enabled=true".into());
        }
        if self.url {
            s.push(format!("webhook.url={COMBO_URL}"));
        }
        s
    }
}
