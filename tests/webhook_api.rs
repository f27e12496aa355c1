//! The webhook endpoints over real TLS on 127.0.0.1 (HTTP/2 and HTTP/1.1), compared with the
//! pure core called directly.

mod webhook_common;

use base64::Engine;
use raygate::violation::{Severity, ValidateOptions};
use raygate::webhook::client::Proto;
use raygate::webhook::server::default_handler_threads;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhook_common::*;

const VALIDATE: &str = "/validate-ray-io-v1-raycluster";
const MUTATE: &str = "/mutate-ray-io-v1-raycluster";
const CONVERT: &str = "/convert";

fn core_errors(obj: &Value, old: Option<&Value>) -> Vec<raygate::violation::Violation> {
    let mut o = obj.clone();
    raygate::defaulting::apply_crd_defaults(&mut o);
    let old = old.map(raygate::defaulting::defaulted);
    raygate::rules::validate(&o, old.as_ref(), &ValidateOptions::default())
        .into_iter()
        .filter(|v| v.severity == Severity::Error)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_every_sample_agrees_with_core_over_h2_and_h1() {
    validate_every_sample(default_handler_threads()).await;
}

/// The same with the handlers on the I/O threads (`--handler-threads 0`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_every_sample_with_handlers_on_the_io_threads() {
    validate_every_sample(0).await;
}

async fn validate_every_sample(handler_threads: usize) {
    let srv = start(|o| o.handler_threads = handler_threads).await;
    let mut h2 = srv.conn(Proto::H2).await;
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
    let mut h1 = srv.conn(Proto::H1).await;
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let mut allowed = 0;
    let mut denied = 0;
    for (i, (file, obj)) in samples().iter().enumerate() {
        let uid = format!("uid-{i}");
        let conn = if i % 2 == 0 { &mut h2 } else { &mut h1 };
        let (status, resp) =
            post_json(conn, VALIDATE, &review(&uid, "CREATE", Some(obj), None)).await;
        assert_eq!(status, 200, "{file}: {resp}");
        assert_eq!(resp["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(resp["kind"], "AdmissionReview");
        let r = &resp["response"];
        assert_eq!(r["uid"], uid, "{file}");
        let errors = core_errors(obj, None);
        if errors.is_empty() {
            assert_eq!(r["allowed"], true, "{file}: {r}");
            allowed += 1;
        } else {
            assert_eq!(r["allowed"], false, "{file}: {r}");
            assert_eq!(r["status"]["code"], 422, "{file}");
            assert_eq!(r["status"]["reason"], "Invalid");
            let causes = r["status"]["details"]["causes"].as_array().unwrap();
            assert_eq!(causes.len(), errors.len(), "{file}: {r}");
            for (c, e) in causes.iter().zip(&errors) {
                assert_eq!(c["field"], e.path.as_str());
                assert!(c["message"].as_str().unwrap().ends_with(&e.message));
            }
            denied += 1;
        }
    }
    eprintln!("samples over TLS: {allowed} allowed, {denied} denied (as the core decides)");
    assert!(allowed > 0);
    srv.stop().await;
}

/// A RayCluster with several independent errors: every one is listed.
fn multi_invalid() -> Value {
    json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": format!("x{}", "a".repeat(60)), "namespace": "default"},
        "spec": {
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.52.0"}]}}},
            "workerGroupSpecs": [
                {"groupName": "a", "replicas": 1, "minReplicas": 5, "maxReplicas": 2,
                 "rayStartParams": {}, "template": {"spec": {"containers": [{"name": "w", "image": "r"}]}}},
                {"groupName": "b", "replicas": 1, "minReplicas": -1, "maxReplicas": 2,
                 "rayStartParams": {}, "template": {"spec": {"containers": [{"name": "w", "image": "r"}]}}}
            ]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_is_422_listing_every_violation() {
    let srv = start(|_| {}).await;
    let mut c = srv.conn(Proto::H2).await;
    let obj = multi_invalid();
    let errors = core_errors(&obj, None);
    assert!(
        errors.len() >= 3,
        "the core should find the long name, min>max and negative min: {errors:?}"
    );
    let (status, resp) = post_json(
        &mut c,
        VALIDATE,
        &review("u-inv", "CREATE", Some(&obj), None),
    )
    .await;
    assert_eq!(status, 200);
    let r = &resp["response"];
    assert_eq!(r["uid"], "u-inv");
    assert_eq!(r["allowed"], false);
    let st = &r["status"];
    assert_eq!(st["code"], 422);
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(st["status"], "Failure");
    assert_eq!(st["details"]["group"], "ray.io");
    assert_eq!(st["details"]["kind"], "RayCluster");
    let name = obj["metadata"]["name"].as_str().unwrap();
    assert_eq!(st["details"]["name"], name);
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("RayCluster.ray.io \"{name}\" is invalid: [")),
        "{msg}"
    );
    let causes = st["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), errors.len());
    for e in &errors {
        assert!(
            causes.iter().any(|c| c["field"] == e.path.as_str()
                && c["reason"] == "FieldValueInvalid"
                && c["message"].as_str().unwrap().contains(&e.message)),
            "missing cause for {e:?}: {causes:?}"
        );
        assert!(
            msg.contains(&format!("{}: Invalid value: ", e.path)),
            "{msg}"
        );
        assert!(msg.contains(&e.message), "{msg}");
    }
    assert!(
        msg.contains("Invalid value: 5: "),
        "min value rendered: {msg}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_is_validated_with_old_object_and_other_operations_are_allowed() {
    let srv = start(|_| {}).await;
    let mut c = srv.conn(Proto::H2).await;
    let (_, obj) = samples().into_iter().next().unwrap();
    // UPDATE: verdict matches the core called with the old object.
    let mut new = obj.clone();
    new["spec"]["workerGroupSpecs"][0]["minReplicas"] = json!(7);
    new["spec"]["workerGroupSpecs"][0]["maxReplicas"] = json!(3);
    let (_, resp) = post_json(
        &mut c,
        VALIDATE,
        &review("u-up", "UPDATE", Some(&new), Some(&obj)),
    )
    .await;
    let errs = core_errors(&new, Some(&obj));
    assert_eq!(resp["response"]["uid"], "u-up");
    assert_eq!(resp["response"]["allowed"], errs.is_empty(), "{resp}");
    // DELETE / CONNECT: allowed, uid echoed, even with an invalid old object.
    for op in ["DELETE", "CONNECT"] {
        let (s, resp) = post_json(
            &mut c,
            VALIDATE,
            &review("u-del", op, None, Some(&multi_invalid())),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(resp["response"]["allowed"], true, "{op}: {resp}");
        assert_eq!(resp["response"]["uid"], "u-del");
    }
    // dryRun: same verdict, still answered (no side effects exist).
    let mut rv = review("u-dry", "CREATE", Some(&multi_invalid()), None);
    rv["request"]["dryRun"] = json!(true);
    let (_, resp) = post_json(&mut c, VALIDATE, &rv).await;
    assert_eq!(resp["response"]["uid"], "u-dry");
    assert_eq!(
        resp["response"]["allowed"],
        core_errors(&multi_invalid(), None).is_empty()
    );
    // v1alpha1 request: deprecation warning within limits.
    let alpha = raygate::conversion::convert(&obj, "ray.io/v1alpha1").unwrap();
    let (_, resp) = post_json(
        &mut c,
        VALIDATE,
        &review("u-a", "CREATE", Some(&alpha), None),
    )
    .await;
    let warnings = resp["response"]["warnings"].as_array().expect("warnings");
    assert!(warnings.iter().any(|w| {
        w.as_str()
            .unwrap()
            .contains("v1alpha1 RayCluster is deprecated")
    }));
    let total: usize = warnings.iter().map(|w| w.as_str().unwrap().len()).sum();
    assert!(
        warnings
            .iter()
            .all(|w| w.as_str().unwrap().chars().count() <= 256)
            && total <= 4096
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_patch_applied_equals_core_defaulted_and_is_idempotent() {
    let srv = start(|_| {}).await;
    let mut c = srv.conn(Proto::H2).await;
    let mut patched = 0;
    for (i, (file, obj)) in samples().iter().enumerate() {
        let uid = format!("m-{i}");
        let (status, resp) =
            post_json(&mut c, MUTATE, &review(&uid, "CREATE", Some(obj), None)).await;
        assert_eq!(status, 200);
        let r = &resp["response"];
        assert_eq!(r["uid"], uid);
        assert_eq!(r["allowed"], true);
        let expected = raygate::defaulting::defaulted(obj);
        let mut applied = obj.clone();
        if let Some(p) = r.get("patch") {
            assert_eq!(r["patchType"], "JSONPatch", "{file}");
            let b64 = p
                .as_str()
                .expect("patch is a base64 string (kube-rs#1781 worked around)");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
            json_patch::patch(&mut applied, &patch).unwrap();
            patched += 1;
        } else {
            assert!(r.get("patchType").is_none());
        }
        assert_eq!(applied, expected, "{file}");
        // already defaulted → no patch
        let (_, resp2) = post_json(
            &mut c,
            MUTATE,
            &review("again", "UPDATE", Some(&applied), Some(obj)),
        )
        .await;
        assert!(resp2["response"].get("patch").is_none(), "{file}: {resp2}");
        assert_eq!(resp2["response"]["allowed"], true);
    }
    assert!(patched > 0, "some sample needs defaults");
    srv.stop().await;
}

/// The decoded JSON Patch of a mutate reply, if any.
fn reply_patch(r: &Value) -> Option<json_patch::Patch> {
    let b64 = r.get("patch")?.as_str().expect("patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Issue #12: `raygate.io/autoscaler: sidecar` / `central` over the real endpoint, on every
/// sample: the patch makes `defaulted_with`, a user's value is kept, and the result mutated again
/// (reinvocationPolicy: IfNeeded) gets no patch; without `--sidecar-image` only a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_opt_in_annotation_is_filled_once_and_never_overwrites() {
    let opt_in = raygate::defaulting::OptIn {
        sidecar_image: Some("example.org/raygate:1".into()),
        sidecar_command: true,
    };
    let with = start(|o| o.opt_in = opt_in.clone()).await;
    let without = start(|_| {}).await;
    let mut c = with.conn(Proto::H2).await;
    let mut c0 = without.conn(Proto::H1).await;
    let (mut sidecars, mut kept_image, mut centrals) = (0, 0, 0);
    for (i, (file, obj)) in samples().iter().enumerate() {
        for mode in ["sidecar", "central"] {
            let mut obj = obj.clone();
            obj["metadata"]["annotations"]["raygate.io/autoscaler"] = json!(mode);
            let (status, resp) = post_json(
                &mut c,
                MUTATE,
                &review(&format!("o-{i}"), "CREATE", Some(&obj), None),
            )
            .await;
            assert_eq!(status, 200);
            let r = &resp["response"];
            assert_eq!(r["allowed"], true, "{file}: {resp}");
            let (expected, warnings) = raygate::defaulting::defaulted_with(&obj, &opt_in);
            let mut applied = obj.clone();
            if let Some(p) = reply_patch(r) {
                json_patch::patch(&mut applied, &p).unwrap();
            }
            assert_eq!(applied, expected, "{file} {mode}");
            let got: Vec<Value> = r
                .get("warnings")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                got,
                warnings.iter().map(|w| json!(w)).collect::<Vec<_>>(),
                "{file}"
            );
            let spec = &applied["spec"];
            let in_tree = spec["enableInTreeAutoscaling"] == true;
            let user_in_tree = &obj["spec"]["enableInTreeAutoscaling"];
            if mode == "sidecar" && in_tree {
                sidecars += 1;
                let ao = &spec["autoscalerOptions"];
                match obj["spec"]["autoscalerOptions"].get("image") {
                    Some(theirs) => {
                        kept_image += 1;
                        assert_eq!(&ao["image"], theirs, "{file}: the user's image is kept");
                    }
                    None => assert_eq!(ao["image"], "example.org/raygate:1", "{file}"),
                }
            } else if mode == "sidecar" {
                assert_eq!(
                    user_in_tree,
                    &json!(false),
                    "{file}: only an explicit false stops it"
                );
                assert!(warnings[0].contains("is not true"), "{file}: {warnings:?}");
            } else if user_in_tree == &json!(true) {
                assert!(warnings[0].contains("leaves this cluster alone"), "{file}");
            } else {
                centrals += 1;
                assert_eq!(spec["enableInTreeAutoscaling"], false, "{file}");
                assert!(
                    spec["headGroupSpec"]["rayStartParams"]
                        .get("no-monitor")
                        .is_some(),
                    "{file}"
                );
            }
            // reinvoked on its own result: nothing more
            let (_, again) = post_json(
                &mut c,
                MUTATE,
                &review("again", "UPDATE", Some(&applied), Some(&obj)),
            )
            .await;
            assert!(
                again["response"].get("patch").is_none(),
                "{file} {mode}: {again}"
            );
            // without --sidecar-image: a sidecar cluster is left as the plain defaults leave it
            if mode == "sidecar" {
                let (_, r0) = post_json(
                    &mut c0,
                    MUTATE,
                    &review(&format!("n-{i}"), "CREATE", Some(&obj), None),
                )
                .await;
                let r0 = &r0["response"];
                let mut plain = obj.clone();
                if let Some(p) = reply_patch(r0) {
                    json_patch::patch(&mut plain, &p).unwrap();
                }
                assert_eq!(plain, raygate::defaulting::defaulted(&obj), "{file}");
                let w = r0["warnings"][0].as_str().unwrap_or_default();
                assert!(w.contains("--sidecar-image"), "{file}: {r0}");
            }
        }
    }
    // (no sample sets autoscalerOptions.image; the unit tests cover a user's image)
    assert!(
        sidecars > 5 && centrals > 5,
        "{sidecars} {kept_image} {centrals}"
    );
    with.stop().await;
    without.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversion_round_trip_over_tls_is_lossless_for_every_sample() {
    let srv = start(|_| {}).await;
    let mut c = srv.conn(Proto::H2).await;
    let objs: Vec<Value> = samples().into_iter().map(|(_, o)| o).collect();
    let (status, down) = post_json(
        &mut c,
        CONVERT,
        &conversion_review("c-1", "ray.io/v1alpha1", objs.clone()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(down["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(down["kind"], "ConversionReview");
    let r = &down["response"];
    assert_eq!(r["uid"], "c-1");
    assert_eq!(r["result"]["status"], "Success", "{r}");
    let alpha = r["convertedObjects"].as_array().unwrap().clone();
    assert_eq!(alpha.len(), objs.len());
    for (a, o) in alpha.iter().zip(&objs) {
        assert_eq!(a["apiVersion"], "ray.io/v1alpha1");
        // order and metadata kept (only annotations may differ)
        let mut am = a["metadata"].clone();
        let mut om = o["metadata"].clone();
        am.as_object_mut().unwrap().remove("annotations");
        om.as_object_mut().unwrap().remove("annotations");
        assert_eq!(am, om);
    }
    let (_, up) = post_json(
        &mut c,
        CONVERT,
        &conversion_review("c-2", "ray.io/v1", alpha),
    )
    .await;
    assert_eq!(up["response"]["uid"], "c-2");
    assert_eq!(up["response"]["result"]["status"], "Success");
    let back = up["response"]["convertedObjects"].as_array().unwrap();
    for (b, o) in back.iter().zip(&objs) {
        assert_eq!(b, o, "round trip lost data for {}", o["metadata"]["name"]);
    }
    // all or nothing
    let mut mixed = objs[..3].to_vec();
    mixed.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}));
    let (s, resp) = post_json(
        &mut c,
        CONVERT,
        &conversion_review("c-3", "ray.io/v1alpha1", mixed),
    )
    .await;
    assert_eq!(s, 200);
    let r = &resp["response"];
    assert_eq!(r["uid"], "c-3");
    assert_eq!(r["result"]["status"], "Failure");
    assert!(
        r["result"]["message"]
            .as_str()
            .unwrap()
            .contains("object 3"),
        "{r}"
    );
    assert!(
        r["convertedObjects"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );
    srv.stop().await;
}

async fn raw_post(srv: &TestServer, path: &str, body: &[u8]) -> (u16, Value) {
    let mut c = srv.conn(Proto::H2).await;
    let (s, b) = c
        .post(path, bytes::Bytes::copy_from_slice(body))
        .await
        .expect("request");
    let v = serde_json::from_slice(&b)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).to_string()));
    (s, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_4xx_or_denial_with_uid() {
    let srv = start(|o| {
        o.body_limit = 7 * 1024 * 1024;
        o.request_timeout = Duration::from_secs(1);
    })
    .await;
    // not JSON
    let (s, v) = raw_post(&srv, VALIDATE, b"{nope").await;
    assert_eq!(s, 400);
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{v}"
    );
    // wrong apiVersion / kind
    let mut rv = review("u1", "CREATE", Some(&multi_invalid()), None);
    rv["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (s, v) = raw_post(&srv, VALIDATE, &serde_json::to_vec(&rv).unwrap()).await;
    assert_eq!(s, 400);
    assert!(
        v["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("v1beta1")
    );
    // missing request
    let (s, _) = raw_post(
        &srv,
        MUTATE,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
    )
    .await;
    assert_eq!(s, 400);
    // malformed request but readable uid: uid echoed
    let (s, v) = raw_post(&srv, VALIDATE, br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-bad","operation":"EXPLODE"}}"#).await;
    assert_eq!(s, 400);
    assert_eq!(v["response"]["uid"], "u-bad");
    assert_eq!(v["response"]["allowed"], false);
    // not a RayCluster: allowed=false with uid
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    let mut rv = review("u-pod", "CREATE", Some(&pod), None);
    rv["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
    for path in [VALIDATE, MUTATE] {
        let (s, v) = raw_post(&srv, path, &serde_json::to_vec(&rv).unwrap()).await;
        assert_eq!(s, 200, "{path}");
        assert_eq!(v["response"]["uid"], "u-pod");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 400);
    }
    // RayCluster kind but the object is a Pod
    let mut rv = review("u-pod2", "CREATE", Some(&pod), None);
    rv["request"]["kind"] = json!({"group": "ray.io", "version": "v1", "kind": "RayCluster"});
    let (_, v) = raw_post(&srv, VALIDATE, &serde_json::to_vec(&rv).unwrap()).await;
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["uid"], "u-pod2");
    // missing object on CREATE
    let rv = review("u-noobj", "CREATE", None, None);
    let (_, v) = raw_post(&srv, VALIDATE, &serde_json::to_vec(&rv).unwrap()).await;
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["uid"], "u-noobj");
    // conversion: bad JSON, wrong kind, missing request, bad desired version
    let (s, _) = raw_post(&srv, CONVERT, b"[]").await;
    assert_eq!(s, 400);
    let (s, _) = raw_post(
        &srv,
        CONVERT,
        br#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}"#,
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = raw_post(
        &srv,
        CONVERT,
        &serde_json::to_vec(&conversion_review(
            "c-x",
            "ray.io/v9",
            vec![multi_invalid()],
        ))
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["response"]["uid"], "c-x");
    assert_eq!(v["response"]["result"]["status"], "Failure");
    // body over the limit → 413; a 6 MiB UPDATE-sized body is accepted
    let big = vec![b' '; 8 * 1024 * 1024];
    let (s, _) = raw_post(&srv, VALIDATE, &big).await;
    assert_eq!(s, 413);
    let mut obj = multi_invalid();
    obj["metadata"]["annotations"] = json!({"big": "x".repeat(3 * 1024 * 1024)});
    let rv = review("u-big", "UPDATE", Some(&obj), Some(&obj));
    let body = serde_json::to_vec(&rv).unwrap();
    assert!(body.len() > 6 * 1024 * 1024);
    let (s, v) = raw_post(&srv, VALIDATE, &body).await;
    assert_eq!(s, 200);
    assert_eq!(v["response"]["uid"], "u-big");
    // wrong method / path
    let (s, _) = {
        let mut c = srv.conn(Proto::H1).await;
        c.post("/nope", bytes::Bytes::from_static(b"{}"))
            .await
            .unwrap()
    };
    assert_eq!(s, 404);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_plain_http_and_old_tls_are_rejected_without_hanging() {
    let srv = start(|o| o.request_timeout = Duration::from_secs(1)).await;
    // slow client: headers + part of the body, then nothing → 408 within the timeout.
    {
        let mut tls = stalled_post(srv.addr, &srv.ca_pem, VALIDATE).await;
        let start = Instant::now();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .expect("server answers a stalled body within the request timeout")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(start.elapsed() < Duration::from_secs(4));
    }
    // plain HTTP on the TLS port → readable 400, connection closed.
    {
        let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(b"POST /validate-ray-io-v1-raycluster HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf))
            .await
            .expect("no hang")
            .unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
        assert!(text.contains("HTTPS only"));
    }
    // a TLS 1.1-only ClientHello → fatal alert, connection closed.
    {
        let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(&tls11_client_hello()).await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf))
            .await
            .expect("no hang")
            .ok();
        assert!(buf.len() >= 7, "expected an alert, got {buf:?}");
        assert_eq!(buf[0], 0x15, "alert record: {buf:?}");
        assert_eq!(buf[5], 2, "fatal");
        // rustls answers handshake_failure (40); protocol_version (70) would be as clean.
        assert!(matches!(buf[6], 40 | 70), "handshake refused: {buf:?}");
    }
    // the server is still healthy afterwards
    let mut c = srv.conn(Proto::H2).await;
    let (s, _) = post_json(&mut c, VALIDATE, &review("after", "DELETE", None, None)).await;
    assert_eq!(s, 200);
    srv.stop().await;
}

/// A minimal ClientHello offering only TLS 1.1 (no supported_versions extension).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend([7u8; 32]); // random
    body.push(0); // session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend([0x01, 0x00]); // compression: null
    // extensions: SNI localhost
    let host = b"localhost";
    let mut sni = vec![];
    sni.extend(((host.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend((host.len() as u16).to_be_bytes());
    sni.extend(host);
    let mut ext = vec![0x00, 0x00];
    ext.extend((sni.len() as u16).to_be_bytes());
    ext.extend(sni);
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![0x01];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend((hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_port_health_ready_metrics() {
    let srv = start(|_| {}).await;
    assert_eq!(srv.admin_get("/healthz").await.0, 200);
    let (s, b) = srv.admin_get("/readyz").await;
    assert_eq!((s, b.trim()), (200, "ready"));
    let mut c = srv.conn(Proto::H2).await;
    post_json(
        &mut c,
        VALIDATE,
        &review("m1", "CREATE", Some(&multi_invalid()), None),
    )
    .await;
    post_json(
        &mut c,
        MUTATE,
        &review("m2", "CREATE", Some(&multi_invalid()), None),
    )
    .await;
    let (s, m) = srv.admin_get("/metrics").await;
    assert_eq!(s, 200);
    for needle in [
        "raygate_webhook_requests_total{endpoint=\"validate\",operation=\"CREATE\",result=",
        "raygate_webhook_requests_total{endpoint=\"mutate\",operation=\"CREATE\",result=\"patched\"} 1",
        "raygate_webhook_request_duration_seconds_bucket{",
        "raygate_webhook_certificate_expiry_timestamp_seconds ",
        "raygate_webhook_certificate_reloads_total 0",
        "raygate_webhook_certificate_reload_failures_total 0",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
    for e in core_errors(&multi_invalid(), None) {
        assert!(
            m.contains(&format!(
                "raygate_webhook_violations_total{{rule=\"{}\"}}",
                e.rule
            )),
            "{m}"
        );
    }
    let expiry: f64 = m
        .lines()
        .find(|l| l.starts_with("raygate_webhook_certificate_expiry_timestamp_seconds "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(expiry > raygate::certs::now_unix() as f64 + 29.0 * 86400.0);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_certificate_when_none_is_present() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = test_options();
    opts.tls = raygate::webhook::TlsMode::FilesOrEphemeral {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let srv = start_with(opts, String::new(), None).await;
    assert!(srv.ca_pem.contains("BEGIN CERTIFICATE"));
    let mut c = srv.conn(Proto::H2).await;
    let (s, v) = post_json(&mut c, VALIDATE, &review("e1", "DELETE", None, None)).await;
    assert_eq!(s, 200);
    assert_eq!(v["response"]["uid"], "e1");
    // also by IP SAN
    let cfg = raygate::webhook::client::tls_config(&srv.ca_pem, Proto::H1).unwrap();
    raygate::webhook::client::connect(srv.addr, "127.0.0.1", cfg)
        .await
        .expect("IP SAN");
    srv.stop().await;
    // only one of the two files → error
    std::fs::write(dir.path().join("tls.crt"), "x").unwrap();
    let mut opts = test_options();
    opts.tls = raygate::webhook::TlsMode::FilesOrEphemeral {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let err = raygate::webhook::Server::bind(opts)
        .await
        .err()
        .expect("error");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_gates_reach_the_rules() {
    let spec = "RayClusterNetworkPolicy=true,RayClusterMTLS=true,RayClusterHistoryServer=true,GCSFaultToleranceEmbeddedStorage=true";
    let gates = raygate::violation::FeatureGates::parse(spec).unwrap();
    let srv = start(|o| o.validate.gates = gates.clone()).await;
    let mut c = srv.conn(Proto::H2).await;
    let opts = ValidateOptions {
        gates,
        ..Default::default()
    };
    let mut changed = 0;
    for (i, (file, obj)) in samples().iter().enumerate() {
        let d = raygate::defaulting::defaulted(obj);
        let with = raygate::rules::validate(&d, None, &opts)
            .iter()
            .any(|v| v.severity == Severity::Error);
        let without = !core_errors(obj, None).is_empty();
        if with != without {
            changed += 1;
        }
        let (_, resp) = post_json(
            &mut c,
            VALIDATE,
            &review(&format!("g{i}"), "CREATE", Some(obj), None),
        )
        .await;
        assert_eq!(resp["response"]["allowed"], !with, "{file}: {resp}");
    }
    assert!(changed > 0, "the gates change some verdicts");
    srv.stop().await;
    // the CLI rejects unknown gates
    let args = raygate::cli::serve::ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        tls_cert: None,
        tls_key: None,
        feature_gates: "NoSuchGate=true".into(),
        log_format: raygate::cli::serve::LogFormat::Text,
        body_limit: 1024,
        request_timeout: 1.0,
        shutdown_delay: 0.0,
        drain_timeout: 1.0,
        cert_poll_interval: 1.0,
        handler_threads: Some(3),
        io_threads: None,
        large_concurrency: 1,
        large_queue: 4,
        max_connections: 8,
        admin_max_connections: 4,
        header_timeout: 1.0,
        sidecar_image: None,
        sidecar_kuberay_version: "1.7".into(),
    };
    assert!(args.to_options().unwrap_err().contains("NoSuchGate"));
    let ok = raygate::cli::serve::ServeArgs {
        feature_gates: String::new(),
        ..args
    };
    assert_eq!(ok.to_options().unwrap().handler_threads, 3);
}
