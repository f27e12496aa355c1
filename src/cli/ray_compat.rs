//! The `ray kuberay-autoscaler` entry point: an image whose `ray` is raygate (a symlink) runs
//! `raygate autoscale sidecar` for the command line KubeRay generates for its autoscaler
//! container, which KubeRay < 1.7 cannot change:
//!
//! ```text
//! /bin/bash -c -- "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace $(RAY_CLUSTER_NAMESPACE)"
//! ```
//!
//! Accepted: Ray's CLI shape for that subcommand: `ray [--logging-level L] [--logging-format F]
//! kuberay-autoscaler --cluster-name X --cluster-namespace Y [--gcs-address H:P]` (`--flag=value`
//! too), also as `raygate kuberay-autoscaler ...`. Anything else is a clear error (exit 2): this
//! `ray` is not Ray.

use std::ffi::OsString;
use std::path::Path;

/// What `ray kuberay-autoscaler` was given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KuberayAutoscaler {
    pub cluster_name: String,
    pub cluster_namespace: String,
    pub gcs_address: Option<String>,
    /// Ray's `--logging-level` (debug, info, warning, error, critical).
    pub logging_level: Option<String>,
}

/// A parsed `ray` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RayCommand {
    KuberayAutoscaler(KuberayAutoscaler),
    /// `--help` (anywhere): print this usage, exit 0.
    Help,
    /// `--version`: print raygate's version, exit 0.
    Version,
}

/// How `main` goes on after looking at argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatch {
    /// Not the `ray` entry point: parse argv as raygate's own command line.
    Raygate(Vec<OsString>),
    /// Print `text` to stdout (or stderr when `code != 0`), exit with `code`.
    Exit { code: u8, text: String },
}

pub const USAGE: &str = "\
Usage: ray [--logging-level LEVEL] [--logging-format FMT] kuberay-autoscaler \
--cluster-name NAME --cluster-namespace NAMESPACE [--gcs-address HOST:PORT]

This `ray` is raygate: `ray kuberay-autoscaler` runs `raygate autoscale sidecar`, raygate's
autoscaler in place of Ray's, for the RayCluster KubeRay names. No other `ray` command exists
here. Further options come from the environment (see `raygate autoscale sidecar --help`).
";

/// True when argv is meant for the compatibility entry point: argv\[0\]'s file name is `ray`, or
/// the first argument is `kuberay-autoscaler`.
pub fn is_ray_entry(argv: &[OsString]) -> bool {
    let base = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n == "ray")
        .unwrap_or(false);
    base || argv.get(1).is_some_and(|a| a == "kuberay-autoscaler")
}

/// Turns a `ray ...` argv into raygate's `autoscale sidecar` argv, or tells main to exit.
pub fn dispatch(argv: Vec<OsString>) -> Dispatch {
    if !is_ray_entry(&argv) {
        return Dispatch::Raygate(argv);
    }
    let mut words = Vec::with_capacity(argv.len());
    for a in argv.iter().skip(1) {
        match a.to_str() {
            Some(s) => words.push(s.to_string()),
            None => {
                return Dispatch::Exit {
                    code: 2,
                    text: format!("error: argument {a:?} is not UTF-8\n\n{USAGE}"),
                };
            }
        }
    }
    match parse(&words) {
        Ok(RayCommand::Help) => Dispatch::Exit {
            code: 0,
            text: USAGE.to_string(),
        },
        Ok(RayCommand::Version) => Dispatch::Exit {
            code: 0,
            text: format!(
                "raygate {} (ray kuberay-autoscaler entry point)\n",
                env!("CARGO_PKG_VERSION")
            ),
        },
        Ok(RayCommand::KuberayAutoscaler(k)) => Dispatch::Raygate(sidecar_argv(&k)),
        Err(e) => Dispatch::Exit {
            code: 2,
            text: format!("error: {e}\n\n{USAGE}"),
        },
    }
}

/// `raygate autoscale sidecar` with the same target.
pub fn sidecar_argv(k: &KuberayAutoscaler) -> Vec<OsString> {
    let mut v: Vec<OsString> = ["raygate", "autoscale", "sidecar"]
        .iter()
        .map(OsString::from)
        .collect();
    v.push("--cluster-name".into());
    v.push(k.cluster_name.clone().into());
    v.push("--cluster-namespace".into());
    v.push(k.cluster_namespace.clone().into());
    if let Some(g) = &k.gcs_address {
        v.push("--gcs-address".into());
        v.push(g.into());
    }
    if let Some(l) = &k.logging_level {
        v.push("--log-level".into());
        v.push(tracing_level(l).into());
    }
    v
}

/// Ray's logging level names as tracing filters.
fn tracing_level(ray: &str) -> &'static str {
    match ray.to_ascii_lowercase().as_str() {
        "debug" => "debug",
        "warning" | "warn" => "warn",
        "error" | "critical" | "fatal" => "error",
        _ => "info",
    }
}

/// An option's value: `--flag value` or `--flag=value`.
fn value<'a>(
    flag: &str,
    word: &'a str,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Result<Option<&'a str>, String> {
    if word == flag {
        return rest
            .next()
            .map(|v| Some(v.as_str()))
            .ok_or_else(|| format!("option {flag} requires a value"));
    }
    Ok(word
        .strip_prefix(flag)
        .and_then(|r| r.strip_prefix('='))
        .map(|v| v as &str))
}

/// Parses the words after `ray` (argv\[1..\]).
pub fn parse(words: &[String]) -> Result<RayCommand, String> {
    let mut it = words.iter();
    let mut logging_level = None;
    // Ray's global options, then the subcommand.
    let sub = loop {
        let Some(w) = it.next() else {
            return Err("missing command: only `ray kuberay-autoscaler` is supported".into());
        };
        if w == "--help" || w == "-h" {
            return Ok(RayCommand::Help);
        }
        if w == "--version" {
            return Ok(RayCommand::Version);
        }
        if let Some(v) = value("--logging-level", w, &mut it)? {
            let ok = ["debug", "info", "warning", "error", "critical"];
            if !ok.contains(&v.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "--logging-level {v:?}: choose one of {}",
                    ok.join(", ")
                ));
            }
            logging_level = Some(v.to_string());
            continue;
        }
        if value("--logging-format", w, &mut it)?.is_some() {
            // A Python logging format string: raygate has its own (RAYGATE_LOG_FORMAT).
            continue;
        }
        if w.starts_with('-') {
            return Err(format!("unknown option {w:?}"));
        }
        break w;
    };
    if sub != "kuberay-autoscaler" {
        return Err(format!(
            "`ray {sub}` is not supported: this `ray` is raygate's autoscaler entry point, \
             only `ray kuberay-autoscaler` runs"
        ));
    }
    let (mut name, mut namespace, mut gcs) = (None, None, None);
    while let Some(w) = it.next() {
        if w == "--help" || w == "-h" {
            return Ok(RayCommand::Help);
        }
        if let Some(v) = value("--cluster-name", w, &mut it)? {
            name = Some(v.to_string());
        } else if let Some(v) = value("--cluster-namespace", w, &mut it)? {
            namespace = Some(v.to_string());
        } else if let Some(v) = value("--gcs-address", w, &mut it)? {
            gcs = Some(v.to_string());
        } else if w.starts_with('-') {
            return Err(format!("kuberay-autoscaler: unknown option {w:?}"));
        } else {
            return Err(format!("kuberay-autoscaler: unexpected argument {w:?}"));
        }
    }
    let missing = |what: &str| format!("kuberay-autoscaler: missing option --{what}");
    let cluster_name = name
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("cluster-name"))?;
    let cluster_namespace = namespace
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("cluster-namespace"))?;
    Ok(RayCommand::KuberayAutoscaler(KuberayAutoscaler {
        cluster_name,
        cluster_namespace,
        gcs_address: gcs,
        logging_level,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn ka(name: &str, ns: &str) -> RayCommand {
        RayCommand::KuberayAutoscaler(KuberayAutoscaler {
            cluster_name: name.into(),
            cluster_namespace: ns.into(),
            ..Default::default()
        })
    }

    #[test]
    fn the_entry_point_is_argv0_ray_or_a_first_argument_kuberay_autoscaler() {
        assert!(is_ray_entry(&os(&["ray", "kuberay-autoscaler"])));
        assert!(is_ray_entry(&os(&["/usr/local/bin/ray", "status"])));
        assert!(is_ray_entry(&os(&["raygate", "kuberay-autoscaler"])));
        assert!(!is_ray_entry(&os(&["raygate", "autoscale", "sidecar"])));
        assert!(!is_ray_entry(&os(&["/usr/bin/raygate"])));
        assert!(!is_ray_entry(&os(&["ray-x", "kuberay"])));
        assert!(!is_ray_entry(&[]));
    }

    #[test]
    fn kuberay_16_command_line_after_bash_and_the_kubelet() {
        // KubeRay 1.6: /bin/bash -c -- "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME)
        // --cluster-namespace $(RAY_CLUSTER_NAMESPACE)", the kubelet having expanded $(VAR) and
        // bash having split the words.
        let argv = os(&[
            "ray",
            "kuberay-autoscaler",
            "--cluster-name",
            "raycluster-autoscaler",
            "--cluster-namespace",
            "team-a",
        ]);
        assert_eq!(
            dispatch(argv),
            Dispatch::Raygate(os(&[
                "raygate",
                "autoscale",
                "sidecar",
                "--cluster-name",
                "raycluster-autoscaler",
                "--cluster-namespace",
                "team-a"
            ]))
        );
    }

    #[test]
    fn ray_cli_shapes_are_accepted() {
        assert_eq!(
            parse(&words(
                "kuberay-autoscaler --cluster-name=a --cluster-namespace=b"
            ))
            .unwrap(),
            ka("a", "b")
        );
        assert_eq!(
            parse(&words(
                "kuberay-autoscaler --cluster-namespace b --cluster-name a"
            ))
            .unwrap(),
            ka("a", "b")
        );
        let RayCommand::KuberayAutoscaler(k) = parse(&words(
            "--logging-level debug --logging-format %(message)s kuberay-autoscaler \
             --cluster-name a --cluster-namespace b --gcs-address 127.0.0.1:6380",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(k.logging_level.as_deref(), Some("debug"));
        assert_eq!(k.gcs_address.as_deref(), Some("127.0.0.1:6380"));
        let argv = sidecar_argv(&k);
        assert_eq!(
            argv[argv.len() - 4..],
            os(&["--gcs-address", "127.0.0.1:6380", "--log-level", "debug"])[..]
        );
        assert_eq!(parse(&words("--help")).unwrap(), RayCommand::Help);
        assert_eq!(
            parse(&words("kuberay-autoscaler --help")).unwrap(),
            RayCommand::Help
        );
        assert_eq!(parse(&words("--version")).unwrap(), RayCommand::Version);
        assert_eq!(tracing_level("WARNING"), "warn");
        assert_eq!(tracing_level("critical"), "error");
    }

    #[test]
    fn anything_else_is_a_clear_error() {
        let cases = [
            ("", "missing command"),
            ("start --head", "`ray start` is not supported"),
            (
                "kuberay-autoscaler --cluster-name a",
                "missing option --cluster-namespace",
            ),
            (
                "kuberay-autoscaler --cluster-namespace b",
                "missing option --cluster-name",
            ),
            (
                "kuberay-autoscaler --cluster-name= --cluster-namespace b",
                "--cluster-name",
            ),
            (
                "kuberay-autoscaler --cluster-name a --cluster-namespace",
                "requires a value",
            ),
            (
                "kuberay-autoscaler --cluster-name a --cluster-namespace b --foo",
                "unknown option \"--foo\"",
            ),
            (
                "kuberay-autoscaler --cluster-name a --cluster-namespace b extra",
                "unexpected argument \"extra\"",
            ),
            (
                "--logging-level loud kuberay-autoscaler",
                "--logging-level \"loud\"",
            ),
            ("--bogus kuberay-autoscaler", "unknown option \"--bogus\""),
        ];
        for (line, want) in cases {
            let e = parse(&words(line)).unwrap_err();
            assert!(e.contains(want), "{line:?}: {e}");
        }
        match dispatch(os(&["ray", "start", "--head"])) {
            Dispatch::Exit { code: 2, text } => assert!(text.contains("Usage: ray"), "{text}"),
            other => panic!("{other:?}"),
        }
        match dispatch(os(&["ray", "--version"])) {
            Dispatch::Exit { code: 0, text } => assert!(text.starts_with("raygate "), "{text}"),
            other => panic!("{other:?}"),
        }
        // raygate's own command lines pass through untouched.
        let own = os(&["raygate", "autoscale", "run"]);
        assert_eq!(dispatch(own.clone()), Dispatch::Raygate(own));
    }
}
