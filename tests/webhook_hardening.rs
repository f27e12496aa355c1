//! Issue #14 against the real `raygate serve` binary and the in-process server, over real TLS on
//! 127.0.0.1: log injection, admin-port limits, over-limit bodies on HTTP/2.

mod webhook_common;

use raygate::webhook::client::{self, Proto};
use serde_json::json;
use std::time::{Duration, Instant};
use webhook_common::*;

/// Issue #14 (7): a `\n` in an object name forged a log line in `--log-format text`, and NUL
/// and ESC bytes reached the log. Every field is now escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_escape_control_characters_in_every_field() {
    let p = spawn_serve("text", &[]);
    let cfg = client::tls_config(&p.ca_pem, Proto::H2).unwrap();
    let mut conn = client::connect(p.addr, "localhost", cfg)
        .await
        .expect("connect");
    let forged = "2026-01-01T00:00:00.000000Z ERROR raygate: forged";
    let name = format!("evil\n{forged}\u{0}\u{1b}[31mred\r\u{85}\u{2028}x");
    let obj = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name, "namespace": "ns\nns"}, "spec": {}});
    let mut rv = review("uid\n-with-newline", "CREATE", Some(&obj), None);
    rv["request"]["namespace"] = json!("ns\nns");
    for path in [
        "/validate-ray-io-v1-raycluster",
        "/mutate-ray-io-v1-raycluster",
    ] {
        let (status, _) = post_json(&mut conn, path, &rv).await;
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    while lines
        .iter()
        .filter(|l: &&String| l.contains(" request "))
        .count()
        < 2
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match p.logs.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("no two request lines; got:\n{}", lines.join("\n")),
        }
    }
    for l in &lines {
        assert!(!l.starts_with(forged), "forged line: {l:?}");
        assert!(
            !l.chars().any(|c| c.is_control() || c == '\u{2028}'),
            "control character in a log line: {l:?}"
        );
    }
    let req = lines.iter().find(|l| l.contains(" request ")).unwrap();
    assert!(
        req.contains(r"name=evil\n2026-01-01T00:00:00.000000Z ERROR raygate: forged\0\u{1b}[31mred\r\u{85}\u{2028}x"),
        "{req}"
    );
    assert!(req.contains(r"uid=uid\n-with-newline"), "{req}");
    assert!(req.contains(r"namespace=ns\nns"), "{req}");
}
