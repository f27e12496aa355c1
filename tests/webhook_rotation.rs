//! Certificate rotation without restart, Kubernetes-Secret style (`..data` symlink swap),
//! while a bounded load loop runs: the new certificate is served within 10 s and no request
//! fails. A bad new pair is rejected and the old one keeps serving.

mod webhook_common;

use raygate::webhook::client::{self, Proto};
use raygate::webhook::{ServerOptions, TlsMode};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use webhook_common::*;

fn pem_to_der(pem: &str) -> Vec<u8> {
    raygate::certs::parse_chain(pem.as_bytes(), "t").unwrap()[0]
        .as_ref()
        .to_vec()
}

fn gen_pair(ca_days: u32) -> raygate::certs::GeneratedCerts {
    raygate::certs::generate(
        "raygate-webhook",
        &["localhost".to_string()],
        &["127.0.0.1".parse().unwrap()],
        ca_days,
        30,
    )
    .unwrap()
}

async fn metric(srv: &TestServer, name: &str) -> f64 {
    let (_, m) = srv.admin_get("/metrics").await;
    m.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_symlink_rotation_under_load_serves_new_cert_with_zero_failures() {
    let dir = tempfile::tempdir().unwrap();
    let old = gen_pair(30);
    let new = gen_pair(30);
    write_secret_layout(dir.path(), "2026_01", &old.cert_pem, &old.key_pem);
    let opts = ServerOptions {
        tls: TlsMode::Files {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        },
        // Long poll: the directory watcher must do the job.
        cert_poll_interval: Duration::from_secs(120),
        ..test_options()
    };
    let srv = start_with(opts, String::new(), None).await;
    // Clients trust both CAs (as a caBundle would during a CA rollover).
    let bundle = format!("{}{}", old.ca_cert_pem, new.ca_cert_pem);
    let old_der = pem_to_der(&old.cert_pem);
    let new_der = pem_to_der(&new.cert_pem);

    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let body = bytes::Bytes::from(
        serde_json::to_vec(&review("load", "CREATE", Some(&samples()[0].1), None)).unwrap(),
    );
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (ok, failed, stop, body, bundle) = (
            ok.clone(),
            failed.clone(),
            stop.clone(),
            body.clone(),
            bundle.clone(),
        );
        let addr = srv.addr;
        tasks.push(tokio::spawn(async move {
            let proto = if w % 2 == 0 { Proto::H2 } else { Proto::H1 };
            let cfg = client::tls_config(&bundle, proto).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            // bounded: at most 20k requests per worker, 30 s
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && n < 20_000 {
                // a fresh connection every 10 requests so new handshakes happen
                let mut conn = match client::connect(addr, "localhost", cfg.clone()).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("connect failed: {e}");
                        failed.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                };
                for _ in 0..10 {
                    n += 1;
                    match conn
                        .post("/validate-ray-io-v1-raycluster", body.clone())
                        .await
                    {
                        Ok((200, b)) => {
                            let v: Value = serde_json::from_slice(&b).unwrap();
                            assert_eq!(v["response"]["uid"], "load");
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        other => {
                            eprintln!("request failed: {other:?}");
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe = |bundle: String| async move {
        let cfg = client::tls_config(&bundle, Proto::H2).unwrap();
        client::connect(srv.addr, "localhost", cfg)
            .await
            .unwrap()
            .server_cert
    };
    assert_eq!(probe(bundle.clone()).await, old_der);

    // Rotate like the kubelet: new timestamped dir, then swap ..data.
    write_secret_layout(dir.path(), "2026_02", &new.cert_pem, &new.key_pem);
    let rotated = Instant::now();
    let deadline = rotated + Duration::from_secs(10);
    loop {
        if probe(bundle.clone()).await == new_der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = rotated.elapsed();
    // keep the load running a little on the new certificate
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!("rotation: new cert served after {took:?}; {ok} requests ok, {failed} failed");
    assert!(ok > 50, "load loop ran: {ok}");
    assert_eq!(failed, 0);
    assert_eq!(
        metric(&srv, "raygate_webhook_certificate_reloads_total").await,
        1.0
    );
    assert_eq!(
        metric(&srv, "raygate_webhook_certificate_reload_failures_total").await,
        0.0
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_new_pair_is_rejected_and_old_keeps_serving_then_good_pair_is_picked_up() {
    let certs = gen_certs();
    let opts = ServerOptions {
        tls: TlsMode::Files {
            cert: certs.cert.clone(),
            key: certs.key.clone(),
        },
        // the directory watcher reacts; the poll is not needed here
        cert_poll_interval: Duration::from_secs(120),
        ..test_options()
    };
    let old_der = pem_to_der(&std::fs::read_to_string(&certs.cert).unwrap());
    let srv = start_with(opts, certs.ca_pem.clone(), None).await;
    let other = gen_pair(30);
    // new certificate, old key: mismatch
    std::fs::write(&certs.cert, &other.cert_pem).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&srv, "raygate_webhook_certificate_reload_failures_total").await < 1.0 {
        assert!(Instant::now() < deadline, "failure not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = srv.conn(Proto::H2).await;
    assert_eq!(c.server_cert, old_der, "old certificate still served");
    // garbage
    std::fs::write(&certs.cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let c = srv.conn(Proto::H1).await;
    assert_eq!(c.server_cert, old_der);
    assert_eq!(
        metric(&srv, "raygate_webhook_certificate_reloads_total").await,
        0.0
    );
    // a good pair (its CA added to the client trust) gets picked up
    let good = raygate::certs::generate("raygate-webhook", &["localhost".to_string()], &[], 30, 30)
        .unwrap();
    std::fs::write(&certs.key, &good.key_pem).unwrap();
    std::fs::write(&certs.cert, &good.cert_pem).unwrap();
    let good_der = pem_to_der(&good.cert_pem);
    let cfg =
        client::tls_config(&format!("{}{}", certs.ca_pem, good.ca_cert_pem), Proto::H2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = client::connect(srv.addr, "localhost", cfg.clone())
            .await
            .unwrap();
        if c.server_cert == good_der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "good pair not picked up; failures {}",
            metric(&srv, "raygate_webhook_certificate_reload_failures_total").await,
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metric(&srv, "raygate_webhook_certificate_reloads_total").await,
        1.0
    );
    // The watcher must not react to its own reads (inotify OPEN events) in a loop.
    let before = srv.store.checks();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle_checks = srv.store.checks() - before;
    assert!(
        idle_checks <= 1,
        "reload loop: {idle_checks} checks in 1.5 s idle"
    );
    srv.stop().await;
    drop(certs);
}
