//! Issue #17 (4): the webhook's admin port exports what controller-runtime's webhook dashboards
//! read (`controller_runtime_webhook_requests_total{webhook,code}`,
//! `controller_runtime_webhook_requests_in_flight{webhook}`,
//! `controller_runtime_webhook_latency_seconds{webhook}`), `raygate_build_info` and the
//! standard `process_*` metrics. A real `raygate serve` child on 127.0.0.1 is sent reviews over
//! TLS, and its /metrics is scraped and compared with what the client saw and with /proc.

mod webhook_common;

use raygate::webhook::client::Proto;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use webhook_common::*;

const VALIDATE: &str = "/validate-ray-io-v1-raycluster";
const MUTATE: &str = "/mutate-ray-io-v1-raycluster";
const CONVERT: &str = "/convert";
const LIMIT: usize = 64 * 1024;
const NOFILE: u64 = 777;

async fn conn(p: &Proc, proto: Proto) -> raygate::webhook::client::Conn {
    let cfg = raygate::webhook::client::tls_config(&p.ca_pem, proto).unwrap();
    raygate::webhook::client::connect(p.addr, "localhost", cfg)
        .await
        .expect("connect")
}

async fn scrape(p: &Proc) -> (String, Vec<Sample>) {
    let (status, body) = admin_get(p.admin, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    let samples = parse_exposition(&body);
    (body, samples)
}

/// `raygate serve` with a small body limit, a short request timeout and RLIMIT_NOFILE 777.
fn serve() -> Proc {
    spawn_serve_with(
        "json",
        &["--body-limit", &LIMIT.to_string(), "--request-timeout", "2"],
        |cmd| {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    let lim = libc::rlimit {
                        rlim_cur: NOFILE,
                        rlim_max: NOFILE,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_runtime_series_count_what_the_client_saw() {
    let p = serve();
    let (_, before) = scrape(&p).await;
    // the in-flight series exist, at 0, before any request
    for path in [VALIDATE, MUTATE, CONVERT] {
        assert_eq!(
            sample_value(
                &before,
                "controller_runtime_webhook_requests_in_flight",
                &[("webhook", path)]
            ),
            Some(0.0),
            "{path}"
        );
    }
    let (_, rc) = samples().into_iter().next().expect("a KubeRay sample");
    let mut seen: BTreeMap<(&str, u16), u32> = BTreeMap::new();
    let mut c = conn(&p, Proto::H2).await;
    for i in 0..5 {
        let (s, _) = post_json(
            &mut c,
            VALIDATE,
            &review(&format!("v{i}"), "CREATE", Some(&rc), None),
        )
        .await;
        *seen.entry((VALIDATE, s)).or_default() += 1;
    }
    for i in 0..3 {
        let (s, _) = post_json(
            &mut c,
            MUTATE,
            &review(&format!("m{i}"), "CREATE", Some(&rc), None),
        )
        .await;
        *seen.entry((MUTATE, s)).or_default() += 1;
    }
    let (s, _) = post_json(
        &mut c,
        CONVERT,
        &conversion_review("c0", "ray.io/v1", vec![rc.clone()]),
    )
    .await;
    *seen.entry((CONVERT, s)).or_default() += 1;
    // too large: 413; not JSON: 400
    for _ in 0..2 {
        let (s, _) = c
            .post(VALIDATE, bytes::Bytes::from(vec![b' '; LIMIT + 1]))
            .await
            .unwrap();
        *seen.entry((VALIDATE, s)).or_default() += 1;
    }
    let (s, _) = c
        .post(MUTATE, bytes::Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    *seen.entry((MUTATE, s)).or_default() += 1;
    let codes: std::collections::BTreeSet<u16> = seen.keys().map(|(_, c)| *c).collect();
    assert!(
        codes.contains(&200) && codes.contains(&413) && codes.len() >= 3,
        "want 200, 413 and an error code: {seen:?}"
    );

    let (text, after) = scrape(&p).await;
    for ((path, code), n) in &seen {
        let code = code.to_string();
        assert_eq!(
            sample_value(
                &after,
                "controller_runtime_webhook_requests_total",
                &[("webhook", path), ("code", &code)]
            ),
            Some(f64::from(*n)),
            "{path} {code}:\n{text}"
        );
    }
    let total: u32 = seen.values().sum();
    let counted: f64 = after
        .iter()
        .filter(|s| s.name == "controller_runtime_webhook_requests_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(counted, f64::from(total), "{text}");
    for path in [VALIDATE, MUTATE, CONVERT] {
        let n: u32 = seen
            .iter()
            .filter(|((p, _), _)| p == &path)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(
            sample_value(
                &after,
                "controller_runtime_webhook_latency_seconds_count",
                &[("webhook", path)]
            ),
            Some(f64::from(n)),
            "{path}:\n{text}"
        );
        assert_eq!(
            sample_value(
                &after,
                "controller_runtime_webhook_requests_in_flight",
                &[("webhook", path)]
            ),
            Some(0.0)
        );
    }
    // raygate's own series still count by endpoint/result
    assert!(
        text.contains("raygate_webhook_requests_total{endpoint=\"mutate\",operation=\"CREATE\",result=\"patched\"} 3")
            || text.contains("raygate_webhook_requests_total{endpoint=\"mutate\",operation=\"CREATE\",result=\"unchanged\"} 3"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_counts_a_stalled_request_until_its_408() {
    let p = serve();
    let mut tls = stalled_post(p.addr, &p.ca_pem, VALIDATE).await;
    let in_flight = |s: &[Sample]| {
        sample_value(
            s,
            "controller_runtime_webhook_requests_in_flight",
            &[("webhook", VALIDATE)],
        )
    };
    // the request is in the handler (waiting for its body) until the 2 s request timeout
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen_one = false;
    while Instant::now() < deadline && !seen_one {
        let (_, s) = scrape(&p).await;
        seen_one = in_flight(&s) == Some(1.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_one, "a stalled request is in flight");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(6), tls.read(&mut buf))
        .await
        .expect("408 within the request timeout")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"));
    let (text, s) = scrape(&p).await;
    assert_eq!(in_flight(&s), Some(0.0), "{text}");
    assert_eq!(
        sample_value(
            &s,
            "controller_runtime_webhook_requests_total",
            &[("webhook", VALIDATE), ("code", "408")]
        ),
        Some(1.0),
        "the timeout's 408 is counted:\n{text}"
    );
}

fn proc_status_kib(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_info_and_process_metrics_describe_the_serving_process() {
    let t0 = raygate::certs::now_unix() as f64;
    let mut p = serve();
    let pid = p.child.id();
    let mut c = conn(&p, Proto::H2).await;
    let (_, rc) = samples().into_iter().next().unwrap();
    for i in 0..20 {
        post_json(
            &mut c,
            VALIDATE,
            &review(&format!("p{i}"), "CREATE", Some(&rc), None),
        )
        .await;
    }
    let (text, s) = scrape(&p).await;
    let rss_kib = proc_status_kib(pid, "VmRSS:");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;

    // build info: the versions `raygate --version` prints
    let version = std::process::Command::new(env!("CARGO_BIN_EXE_raygate"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let commit = version
        .split("commit ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap();
    assert_eq!(
        sample_value(
            &s,
            "raygate_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", commit),
                ("kuberay", raygate::KUBERAY_VERSION),
                ("ray", raygate::RAY_VERSION),
            ]
        ),
        Some(1.0),
        "{version}\n{text}"
    );

    let v = |name: &str| {
        sample_value(&s, name, &[]).unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    // resident memory: what the kernel says now, within the churn of one scrape
    let rss = v("process_resident_memory_bytes");
    let kernel = rss_kib * 1024.0;
    assert!(
        (rss - kernel).abs() <= kernel * 0.25,
        "process_resident_memory_bytes {rss} vs VmRSS {kernel}"
    );
    assert!(v("process_virtual_memory_bytes") >= rss);
    // the RLIMIT_NOFILE the child was started with
    assert_eq!(v("process_max_fds"), NOFILE as f64);
    let open = v("process_open_fds");
    assert!(
        open >= 3.0 && (open - fds).abs() <= 3.0,
        "process_open_fds {open} vs /proc/{pid}/fd {fds}"
    );
    let start = v("process_start_time_seconds");
    assert!(
        start >= t0 - 2.0 && start <= raygate::certs::now_unix() as f64 + 1.0,
        "start {start} vs test start {t0}"
    );
    let cpu = v("process_cpu_seconds_total");
    let wall = raygate::certs::now_unix() as f64 - t0 + 1.0;
    assert!(cpu > 0.0 && cpu <= wall * 2.0, "cpu {cpu}s in {wall}s");
    assert!(v("process_threads") >= 2.0);
    // the cpu counter only grows
    for i in 0..50 {
        post_json(
            &mut c,
            VALIDATE,
            &review(&format!("q{i}"), "CREATE", Some(&rc), None),
        )
        .await;
    }
    let (_, s2) = scrape(&p).await;
    assert!(sample_value(&s2, "process_cpu_seconds_total", &[]).unwrap() >= cpu);
    let _ = p.child.kill();
    let _ = p.child.wait();
}
