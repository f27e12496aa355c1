//! The RayJob, RayService and RayCronJob endpoints (`/validate-ray-io-v1-rayjob`,
//! `/mutate-ray-io-v1-rayservice`, …) over real TLS on 127.0.0.1, compared with the pure core:
//! every KubeRay sample of the three kinds validated and mutated (twice: the second mutation
//! gives no patch), a multi-violation RayJob refused with every cause and its field path,
//! `v1alpha1` objects, UPDATE warnings, wrong kinds on an endpoint, and the metrics labels.

mod webhook_common;

use base64::Engine;
use raygate::defaulting::{default_patch_kind, defaulted_kind};
use raygate::model::Kind;
use raygate::rules::kinds::validate_kind;
use raygate::violation::Violation;
use raygate::webhook::admission::{mutate_path, validate_path};
use raygate::webhook::client::Proto;
use serde_json::{Value, json};
use webhook_common::*;

/// What the core says about `obj` after the CRD defaults (what the validating endpoint sees).
fn core(kind: Kind, obj: &Value, old: Option<&Value>) -> Vec<Violation> {
    let mut o = obj.clone();
    raygate::defaulting::apply_crd_defaults_kind(kind, &mut o);
    let old = old.map(|x| {
        let mut x = x.clone();
        raygate::defaulting::apply_crd_defaults_kind(kind, &mut x);
        x
    });
    validate_kind(kind, &o, old.as_ref(), &Default::default())
}

/// The decoded JSON Patch of a mutate reply, if any.
fn patch_of(r: &Value) -> Option<json_patch::Patch> {
    let p = r["response"]["patch"].as_str()?;
    assert_eq!(r["response"]["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(p)
        .expect("base64 patch");
    Some(serde_json::from_slice(&bytes).expect("JSON Patch"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_is_validated_like_the_core_and_mutated_once() {
    let srv = start(|_| {}).await;
    let mut h2 = srv.conn(Proto::H2).await;
    let mut h1 = srv.conn(Proto::H1).await;
    let mut patched = 0;
    for (i, (file, kind, obj)) in kind_samples().iter().enumerate() {
        let kind = *kind;
        let conn = if i % 2 == 0 { &mut h2 } else { &mut h1 };
        let uid = format!("uid-{i}");

        // validate: the core's verdict, warnings included
        let (status, resp) = post_json(
            conn,
            validate_path(kind),
            &review_kind(kind, &uid, "CREATE", Some(obj), None),
        )
        .await;
        assert_eq!(status, 200, "{file}: {resp}");
        let r = &resp["response"];
        assert_eq!(r["uid"], uid.as_str(), "{file}");
        let found = core(kind, obj, None);
        assert!(
            found.iter().all(|v| !v.is_error()),
            "{file}: KubeRay accepts every sample (tests/samples_kinds_verdicts.rs): {found:?}"
        );
        assert_eq!(r["allowed"], true, "{file}: {r}");
        let warnings: Vec<String> = found
            .iter()
            .map(|v| format!("{}: {}", v.path, v.message))
            .collect();
        let got: Vec<String> = r["warnings"]
            .as_array()
            .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        assert_eq!(
            got,
            raygate::webhook::admission::limit_warnings(warnings),
            "{file}"
        );

        // mutate: the core's patch; applied, it gives the defaulted object
        let (status, resp) = post_json(
            conn,
            mutate_path(kind),
            &review_kind(kind, &uid, "CREATE", Some(obj), None),
        )
        .await;
        assert_eq!(status, 200, "{file}: {resp}");
        assert_eq!(resp["response"]["allowed"], true);
        let want = defaulted_kind(kind, obj);
        let mut once = obj.clone();
        match patch_of(&resp) {
            Some(p) => {
                assert_eq!(p, default_patch_kind(kind, obj), "{file}");
                json_patch::patch(&mut once, &p).unwrap_or_else(|e| panic!("{file}: {e}"));
                patched += 1;
            }
            None => assert!(default_patch_kind(kind, obj).0.is_empty(), "{file}"),
        }
        assert_eq!(once, want, "{file}: patched object is not defaulted_kind");

        // mutate again (reinvocationPolicy IfNeeded): no second patch
        let (status, resp) = post_json(
            conn,
            mutate_path(kind),
            &review_kind(kind, &uid, "CREATE", Some(&once), None),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            patch_of(&resp).is_none(),
            "{file}: second mutation patched again: {resp}"
        );
    }
    assert!(patched >= 30, "only {patched} samples needed defaults");

    // Each kind is counted under its own endpoint label.
    let (_, metrics) = srv.admin_get("/metrics").await;
    for k in [Kind::RayJob, Kind::RayService, Kind::RayCronJob] {
        let label = format!("endpoint=\"validate-{}\"", k.name().to_lowercase());
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("raygate_webhook_requests_total{") && l.contains(&label)),
            "{label} missing:\n{metrics}"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_in_the_embedded_spec_and_own_fields_are_all_causes() {
    let srv = start(|_| {}).await;
    let mut conn = srv.conn(Proto::H2).await;
    let (_, _, mut job) = kind_samples()
        .into_iter()
        .find(|(f, k, _)| f == "ray-job.sample.yaml" && *k == Kind::RayJob)
        .expect("sample");
    job["metadata"]["name"] = json!("multi");
    let g = &mut job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0];
    g["minReplicas"] = json!(5);
    g["maxReplicas"] = json!(2);
    job["spec"]["activeDeadlineSeconds"] = json!(-1);
    let errors: Vec<Violation> = core(Kind::RayJob, &job, None)
        .into_iter()
        .filter(Violation::is_error)
        .collect();
    assert!(errors.len() >= 2, "{errors:?}");
    let (status, resp) = post_json(
        &mut conn,
        validate_path(Kind::RayJob),
        &review_kind(Kind::RayJob, "u", "CREATE", Some(&job), None),
    )
    .await;
    assert_eq!(status, 200);
    let r = &resp["response"];
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["code"], 422);
    assert_eq!(r["status"]["details"]["kind"], "RayJob");
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("RayJob.ray.io \"multi\" is invalid: ["),
        "{msg}"
    );
    let causes = r["status"]["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), errors.len(), "{r}");
    for (c, e) in causes.iter().zip(&errors) {
        assert_eq!(c["field"], e.path.as_str());
        assert!(c["message"].as_str().unwrap().ends_with(&e.message));
    }
    let fields: Vec<&str> = causes
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"spec.rayClusterSpec.workerGroupSpecs[0].minReplicas")
            && fields.contains(&"spec.activeDeadlineSeconds"),
        "{fields:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_updates_and_wrong_kinds() {
    let srv = start(|_| {}).await;
    let mut conn = srv.conn(Proto::H2).await;
    let samples = kind_samples();
    let find = |f: &str, k: Kind| {
        samples
            .iter()
            .find(|(file, kind, _)| file == f && *kind == k)
            .map(|(_, _, o)| o.clone())
            .expect("sample")
    };
    let job = find("ray-job.sample.yaml", Kind::RayJob);
    let svc = find("ray-service.sample.yaml", Kind::RayService);
    let cron = find("ray-cronjob.sample.yaml", Kind::RayCronJob);

    // v1alpha1 RayJob: validated as v1, with the deprecation warning
    let old_job = raygate::conversion::convert(&job, raygate::conversion::V1ALPHA1).unwrap();
    let (_, resp) = post_json(
        &mut conn,
        validate_path(Kind::RayJob),
        &review_kind(Kind::RayJob, "a", "CREATE", Some(&old_job), None),
    )
    .await;
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    assert!(
        resp["response"]["warnings"]
            .as_array()
            .unwrap()
            .contains(&json!(
                "ray.io/v1alpha1 RayJob is deprecated; use ray.io/v1 RayJob"
            )),
        "{resp}"
    );
    // mutate wants v1 (matchPolicy Equivalent)
    let (_, resp) = post_json(
        &mut conn,
        mutate_path(Kind::RayJob),
        &review_kind(Kind::RayJob, "b", "CREATE", Some(&old_job), None),
    )
    .await;
    assert_eq!(resp["response"]["allowed"], false);
    assert_eq!(
        resp["response"]["status"]["message"],
        "request.object is not ray.io/v1 (configure matchPolicy: Equivalent)"
    );
    // RayCronJob is served only as v1
    let mut old_cron = cron.clone();
    old_cron["apiVersion"] = json!("ray.io/v1alpha1");
    let (_, resp) = post_json(
        &mut conn,
        validate_path(Kind::RayCronJob),
        &review_kind(Kind::RayCronJob, "c", "CREATE", Some(&old_cron), None),
    )
    .await;
    assert_eq!(resp["response"]["allowed"], false);
    assert_eq!(
        resp["response"]["status"]["message"],
        "request.object: apiVersion \"ray.io/v1alpha1\" is not ray.io/v1 (RayCronJob is served only as v1)"
    );

    // UPDATE with oldObject: a RayService min/max edit is allowed with raygate's warning
    let mut edited = svc.clone();
    edited["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = json!(9);
    let want: Vec<Violation> = core(Kind::RayService, &edited, Some(&svc));
    assert!(
        want.iter()
            .any(|v| v.rule == raygate::rules::kinds::RG_SERVICE_MINMAX),
        "{want:?}"
    );
    let (_, resp) = post_json(
        &mut conn,
        validate_path(Kind::RayService),
        &review_kind(Kind::RayService, "d", "UPDATE", Some(&edited), Some(&svc)),
    )
    .await;
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    let warnings = resp["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), want.len(), "{resp}");

    // A RayJob sent to the RayService endpoint, and a RayJob object in a RayService request
    let (_, resp) = post_json(
        &mut conn,
        validate_path(Kind::RayService),
        &review_kind(Kind::RayJob, "e", "CREATE", Some(&job), None),
    )
    .await;
    assert_eq!(
        resp["response"]["status"]["message"],
        "this webhook only handles ray.io RayService, got ray.io/v1 RayJob"
    );
    for path in [
        validate_path(Kind::RayService),
        mutate_path(Kind::RayService),
    ] {
        let (_, resp) = post_json(
            &mut conn,
            path,
            &review_kind(Kind::RayService, "f", "CREATE", Some(&job), None),
        )
        .await;
        assert_eq!(resp["response"]["allowed"], false);
        assert_eq!(
            resp["response"]["status"]["message"],
            "request.object is not a RayService (kind \"RayJob\")",
            "{path}"
        );
    }
    // DELETE is allowed without looking at the object
    let (_, resp) = post_json(
        &mut conn,
        validate_path(Kind::RayCronJob),
        &review_kind(Kind::RayCronJob, "g", "DELETE", None, Some(&cron)),
    )
    .await;
    assert_eq!(resp["response"]["allowed"], true);

    // /convert takes RayJob and RayService, refuses RayCronJob
    let (_, resp) = post_json(
        &mut conn,
        "/convert",
        &conversion_review("h", "ray.io/v1alpha1", vec![job.clone(), svc.clone()]),
    )
    .await;
    assert_eq!(resp["response"]["result"]["status"], "Success", "{resp}");
    let objs = resp["response"]["convertedObjects"].as_array().unwrap();
    assert_eq!(objs[0]["apiVersion"], "ray.io/v1alpha1");
    assert_eq!(objs[1]["kind"], "RayService");
    let (_, resp) = post_json(
        &mut conn,
        "/convert",
        &conversion_review("i", "ray.io/v1alpha1", vec![cron]),
    )
    .await;
    assert_eq!(resp["response"]["result"]["status"], "Failure", "{resp}");
    srv.stop().await;
}
