//! Issue #14 against the real `raygate serve` binary and the in-process server, over real TLS on
//! 127.0.0.1: log injection, admin-port limits, over-limit bodies on HTTP/2.

#[path = "../benches/support/hostile.rs"]
mod hostile;
mod webhook_common;

use raygate::webhook::client::{self, Proto};
use serde_json::json;
use std::time::{Duration, Instant};
use webhook_common::*;

/// The status of a validate request for a small RayCluster (one the server answers 200).
async fn validate_small(conn: &mut client::Conn) -> u16 {
    let small = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "s", "namespace": "default"}, "spec": {}});
    let review = review("u", "CREATE", Some(&small), None);
    post_json(conn, "/validate-ray-io-v1-raycluster", &review)
        .await
        .0
}

/// A RayCluster named `big` whose one annotation is `annotation_bytes` long.
fn big_cluster(annotation_bytes: usize) -> serde_json::Value {
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "big", "namespace": "default",
                     "annotations": {"a": "x".repeat(annotation_bytes)}}, "spec": {}})
}

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

/// `Max open files` soft and hard limits of `pid`.
fn open_files_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].parse().unwrap(), f[4].parse().unwrap())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Issue #14 (2): 300 idle connections to the admin port exhausted the descriptors (under a
/// 64/256 open-files limit) until `/healthz` and the webhook stopped accepting. Now the soft
/// limit is raised to the hard one, each port has a connection cap that closes the oldest
/// connection first, and idle connections time out like on the TLS port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_floods_leave_healthz_and_the_webhook_answering() {
    use std::os::unix::process::CommandExt;
    let p = spawn_serve_with(
        "json",
        &[
            "--admin-max-connections",
            "16",
            "--max-connections",
            "32",
            "--header-timeout",
            "3",
        ],
        |cmd| {
            // SAFETY: setrlimit in the child between fork and exec (async-signal-safe).
            unsafe {
                cmd.pre_exec(|| {
                    let lim = libc::rlimit {
                        rlim_cur: 64,
                        rlim_max: 256,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    );
    let pid = p.child.id();
    assert_eq!(
        open_files_limits(pid),
        (256, 256),
        "soft limit raised to the hard limit"
    );

    // 300 idle admin connections (one is a slow header dribble), 100 idle TCP connections to
    // the TLS port (no handshake).
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(p.admin).await.unwrap();
        if i == 0 {
            use tokio::io::AsyncWriteExt;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    for _ in 0..100 {
        idle.push(tokio::net::TcpStream::connect(p.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds = open_fds(pid);
    assert!(fds < 120, "server holds {fds} descriptors (caps 16 + 32)");

    let t = Instant::now();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(5), admin_get(p.admin, "/healthz"))
            .await
            .expect("/healthz answers under the flood");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let cfg = client::tls_config(&p.ca_pem, Proto::H2).unwrap();
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client::connect(p.addr, "localhost", cfg),
    )
    .await
    .expect("the webhook accepts under the flood")
    .expect("connect");
    assert_eq!(validate_small(&mut conn).await, 200);
    assert!(t.elapsed() < Duration::from_secs(5));

    // Idle connections that were not closed to make room time out like on the TLS port.
    let mut newest = tokio::net::TcpStream::connect(p.admin).await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    use tokio::io::AsyncReadExt;
    let n = tokio::time::timeout(Duration::from_secs(8), newest.read(&mut buf))
        .await
        .expect("an idle admin connection is closed by the header timeout")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without a reply");
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    drop(idle);
}

/// Issue #14 (8): a body over the limit was reset mid-upload on HTTP/2 with no status. It is
/// now answered 413 with an AdmissionReview (ConversionReview on /convert) saying why, over
/// HTTP/2 and HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_bodies_are_answered_413_in_review_form() {
    let srv = start(|o| o.body_limit = 64 * 1024).await;
    let big = big_cluster(200 * 1024);
    for proto in [Proto::H2, Proto::H1] {
        for (path, kind) in [
            ("/validate-ray-io-v1-raycluster", "AdmissionReview"),
            ("/mutate-ray-io-v1-raycluster", "AdmissionReview"),
            ("/convert", "ConversionReview"),
        ] {
            let mut conn = srv.conn(proto).await;
            let (status, v) =
                post_json(&mut conn, path, &review("u", "CREATE", Some(&big), None)).await;
            assert_eq!(status, 413, "{proto:?} {path}: {v}");
            assert_eq!(v["kind"], kind, "{v}");
            let st = if kind == "AdmissionReview" {
                assert_eq!(v["response"]["allowed"], false);
                &v["response"]["status"]
            } else {
                &v["response"]["result"]
            };
            assert_eq!(st["code"], 413, "{v}");
            assert_eq!(st["reason"], "RequestEntityTooLarge", "{v}");
            assert!(
                st["message"].as_str().unwrap().contains("65536 bytes"),
                "{v}"
            );
        }
    }
    // a body under the limit on the same server is fine
    let mut conn = srv.conn(Proto::H2).await;
    assert_eq!(validate_small(&mut conn).await, 200);
    srv.stop().await;
}

/// Issue #14 (1): large bodies are handled `large_concurrency` at a time, with a bounded
/// queue: with 1 slot and a queue of 2, twelve 1 MB reviews sent at once are answered 200 or
/// 429 (none fail, none wait unboundedly), and at most one was ever held at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_reviews_take_bounded_slots_and_excess_is_told_to_back_off() {
    let srv = start(|o| {
        o.large_concurrency = 1;
        o.large_queue = 2;
    })
    .await;
    let big = big_cluster(1024 * 1024);
    let body = review("u", "CREATE", Some(&big), None);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let mut conn = srv.conn(Proto::H2).await;
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            post_json(&mut conn, "/validate-ray-io-v1-raycluster", &body).await
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        if status == 429 {
            assert_eq!(v["response"]["status"]["reason"], "TooManyRequests", "{v}");
        }
        codes.push(status);
    }
    assert!(codes.iter().all(|c| *c == 200 || *c == 429), "{codes:?}");
    assert!(codes.contains(&200), "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
    assert_eq!(srv.large_peak(), 1);
    srv.stop().await;
}

/// Issue #14 (1): large reviews waiting for the one large-request slot on an HTTP/2 connection
/// the API server shares with every other review. A waiting request leaves its body unread, and
/// with one 256 KiB window for the connection and each stream, the first waiting review took the
/// whole connection window: the review holding the slot could not be sent the rest of its body,
/// and every request on the connection, normal ones included, ended in 408 at the request
/// timeout (`benches/webhook_hostile.rs`: 408 for all 16 hostile reviews in flight). Now the
/// connection window holds every stream's window, so all are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_large_reviews_do_not_stall_their_http2_connection() {
    let srv = start(|o| {
        o.large_concurrency = 1;
        o.request_timeout = Duration::from_secs(5);
    })
    .await;
    let big = big_cluster(1024 * 1024);
    let body =
        bytes::Bytes::from(serde_json::to_vec(&review("u", "CREATE", Some(&big), None)).unwrap());
    let conn = srv.conn(Proto::H2).await;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let mut c = conn.try_clone().expect("HTTP/2");
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            c.post("/validate-ray-io-v1-raycluster", body)
                .await
                .expect("request")
                .0
        }));
    }
    // a normal review on the same connection while the large ones wait: answered at once,
    // not when the request timeout (5 s) frees the connection window
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = conn.try_clone().expect("HTTP/2");
    let ts = Instant::now();
    assert_eq!(validate_small(&mut c).await, 200);
    assert!(
        ts.elapsed() < Duration::from_secs(2),
        "the small review waited {:?} behind the large ones",
        ts.elapsed()
    );
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    assert_eq!(codes, vec![200; 6], "after {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(srv.large_peak(), 1);
    srv.stop().await;
}

/// Issue #14 (8): denial messages were unbounded: 5,000 invalid worker groups gave a 1.1 MB
/// message with 10,001 causes. They are now capped like the text the API server relays
/// (docs/hardening.md): at most 50 causes plus an `… and N more` cause, each cause message at
/// most 256 characters, the message at most 5 KiB ending in `… and N more]`, where N counts
/// what was left out. A long value in one cause is cut, not echoed whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_are_capped_in_causes_and_bytes_with_a_count_of_the_rest() {
    use raygate::webhook::admission::{MAX_CAUSE_LEN, MAX_CAUSES, MAX_DENIAL_MESSAGE};
    let srv = start(|_| {}).await;
    let mut conn = srv.conn(Proto::H2).await;
    let obj = hostile::cluster(hostile::Shape::InvalidGroups, 5000);
    let (status, v) = post_json(
        &mut conn,
        "/validate-ray-io-v1-raycluster",
        &hostile::review_of(&obj, "u"),
    )
    .await;
    assert_eq!(status, 200);
    let st = &v["response"]["status"];
    assert_eq!(v["response"]["allowed"], false, "{st}");
    assert_eq!(st["code"], 422);
    let msg = st["message"].as_str().unwrap();
    let causes = st["details"]["causes"].as_array().unwrap();
    assert!(
        msg.len() <= MAX_DENIAL_MESSAGE,
        "message is {} bytes",
        msg.len()
    );
    assert_eq!(causes.len(), MAX_CAUSES + 1, "causes: {}", causes.len());
    for c in &causes[..MAX_CAUSES] {
        assert!(
            c["field"]
                .as_str()
                .unwrap()
                .starts_with("spec.workerGroupSpecs[")
        );
        assert!(c["message"].as_str().unwrap().chars().count() <= MAX_CAUSE_LEN);
    }
    // the tail counts every error left out: listed + N = all
    let tail = |s: &str| -> usize {
        let rest = s.rsplit_once("\u{2026} and ").expect(s).1;
        rest.trim_end_matches(']')
            .strip_suffix(" more")
            .expect(s)
            .parse()
            .expect(s)
    };
    let in_cause = tail(causes[MAX_CAUSES]["message"].as_str().unwrap());
    let listed = msg.matches("spec.workerGroupSpecs[").count();
    let in_msg = tail(msg);
    assert!(listed > 0 && msg.ends_with(" more]"), "{msg}");
    assert_eq!(MAX_CAUSES + in_cause, listed + in_msg, "{msg}");
    assert!(MAX_CAUSES + in_cause >= 5000, "{msg}");

    // one error with a huge value: the cause and the message stay small
    let mut obj = hostile::base_cluster("long");
    obj["spec"]["enableInTreeAutoscaling"] = json!(true);
    obj["spec"]["autoscalerOptions"] = json!({"upscalingMode": "U".repeat(200_000)});
    let (status, v) = post_json(
        &mut conn,
        "/validate-ray-io-v1-raycluster",
        &hostile::review_of(&obj, "u"),
    )
    .await;
    assert_eq!(status, 200);
    let st = &v["response"]["status"];
    assert_eq!(v["response"]["allowed"], false, "{st}");
    let msg = st["message"].as_str().unwrap();
    assert!(msg.len() <= MAX_DENIAL_MESSAGE, "{} bytes", msg.len());
    assert!(!msg.contains('\u{2026}'), "nothing is left out: {msg}");
    for c in st["details"]["causes"].as_array().unwrap() {
        assert!(c["message"].as_str().unwrap().chars().count() <= MAX_CAUSE_LEN);
    }
    srv.stop().await;
}
