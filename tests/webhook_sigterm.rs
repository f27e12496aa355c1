//! SIGTERM against the real `raygate serve` binary while requests are running: readiness goes
//! off, in-flight requests finish, nothing fails, the process exits 0.

mod webhook_common;

use raygate::webhook::client::{self, Proto};
use serde_json::Value;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhook_common::*;

fn sigterm(pid: u32) {
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_fails_no_request() {
    let mut p = spawn_serve("json", &["--shutdown-delay", "1"]);
    let ready = Arc::new(AtomicBool::new(true));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let body = bytes::Bytes::from(
        serde_json::to_vec(&review("t", "CREATE", Some(&samples()[0].1), None)).unwrap(),
    );
    // The "endpoints controller": polls readiness like a kubelet probe would.
    let admin = p.admin;
    let r2 = ready.clone();
    let prober = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let up = tokio::time::timeout(Duration::from_secs(1), admin_get(admin, "/readyz"))
                .await
                .map(|(s, _)| s == 200)
                .unwrap_or(false);
            if !up {
                r2.store(false, Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (ok, failed, ready, body) = (ok.clone(), failed.clone(), ready.clone(), body.clone());
        let (addr, ca) = (p.addr, p.ca_pem.clone());
        tasks.push(tokio::spawn(async move {
            let proto = if w % 2 == 0 { Proto::H2 } else { Proto::H1 };
            let cfg = client::tls_config(&ca, proto).unwrap();
            let mut conn = client::connect(addr, "localhost", cfg).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut n = 0;
            // Stop sending new requests once the endpoint is "removed" (readiness off).
            while ready.load(Ordering::SeqCst) && Instant::now() < deadline && n < 50_000 {
                n += 1;
                match conn
                    .post("/validate-ray-io-v1-raycluster", body.clone())
                    .await
                {
                    Ok((200, _)) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    other => {
                        eprintln!("request failed: {other:?}");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = ok.load(Ordering::SeqCst);
    sigterm(p.child.id());
    for t in tasks {
        t.await.unwrap();
    }
    prober.await.unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let st = wait_exit(&mut p.child, Duration::from_secs(20));
        // the reader thread ends at EOF, which follows the exit
        let mut logs = Vec::new();
        while let Ok(l) = p.logs.recv_timeout(Duration::from_secs(5)) {
            logs.push(l);
        }
        (st, logs)
    })
    .await
    .unwrap();
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!("sigterm: {ok} ok ({before} before the signal), {failed} failed");
    assert!(before > 20, "load ran before the signal: {before}");
    assert_eq!(failed, 0);
    assert!(status.0.success(), "exit status {:?}", status.0);
    let logs = status.1.join("\n");
    assert!(logs.contains("shutdown signal received"), "{logs}");
    assert!(logs.contains("webhook stopped"), "{logs}");
    // one line per request with uid, namespace, name, operation, decision, duration
    let req_line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "request");
    let v = req_line.expect("a request log line");
    for k in [
        "uid",
        "namespace",
        "name",
        "operation",
        "decision",
        "duration_us",
    ] {
        assert!(v.get(k).is_some(), "request log misses {k}: {v}");
    }
    assert_eq!(v["uid"], "t");
    assert_eq!(v["operation"], "CREATE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_request_in_flight() {
    let mut p = spawn_serve("json", &[]);
    let body =
        serde_json::to_vec(&review("inflight", "CREATE", Some(&samples()[0].1), None)).unwrap();
    let half = body.len() / 2;
    let mut tls = partial_post(
        p.addr,
        &p.ca_pem,
        "/validate-ray-io-v1-raycluster",
        body.len(),
        &body[..half],
    )
    .await;
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sigterm(p.child.id());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // the listener is closed for new connections...
    let cfg2 = client::tls_config(&p.ca_pem, Proto::H2).unwrap();
    let refused = client::connect(p.addr, "localhost", cfg2).await.is_err();
    // ...but the request in flight completes.
    tls.write_all(&body[half..]).await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf))
        .await
        .expect("response within 10 s")
        .ok();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"uid\":\"inflight\""), "{text}");
    let st = tokio::task::spawn_blocking(move || wait_exit(&mut p.child, Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(st.success(), "{st:?}");
    assert!(refused, "new connections are refused while draining");
}
