//! `raygate autoscale status <namespace>/<cluster>`: the `ray status` layout of one RayCluster,
//! read the way the controller reads it: the RayCluster (`ray.io/v1`) and its worker pods from
//! the API server (kubeconfig or in-cluster config), Ray's view from the GCS the controller would
//! use ([`super::cluster::gcs_address`]: the head service, or the `raygate.io/gcs-address`
//! annotation), then the engine's plan, then what Kubernetes shows per worker group.

use super::cluster::{GCS_ADDRESS_ANNOTATION, gcs_address};
use super::pods;
use crate::autoscale::types::{EngineInput, WorkerPod};
use crate::gcs::snapshot::RaySnapshot;
use crate::gcs::{GcsClient, GcsOptions};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, ResourceExt};
use serde_json::json;
use std::process::ExitCode;

/// What `raygate autoscale status` needs for the Kubernetes form.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// `<namespace>/<cluster>`, or `<cluster>` in the kubeconfig's namespace.
    pub target: String,
    /// GCS address overriding the head service / annotation (e.g. a `kubectl port-forward`).
    pub gcs: Option<String>,
    /// The controller's flags that decide the plan and the GCS address (`autoscale run`'s).
    pub planning: super::PlanningArgs,
    /// Timestamp of the header (default: now, UTC).
    pub now: String,
}

/// Why the status could not be printed. Every message names the cluster, and the GCS address
/// where one is involved.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{0:?} is not <namespace>/<cluster>")]
    BadTarget(String),
    #[error(
        "cannot configure the Kubernetes client (KUBECONFIG, ~/.kube/config or in-cluster): {0}"
    )]
    Client(String),
    #[error("RayCluster {ns}/{name} not found (rayclusters.ray.io/v1 in namespace {ns})")]
    NotFound { ns: String, name: String },
    #[error("cannot read RayCluster {ns}/{name}: {message}")]
    Read {
        ns: String,
        name: String,
        message: String,
    },
    #[error(
        "RayCluster {ns}/{name} does not autoscale (neither annotated raygate.io/autoscaler: \
         central nor spec.enableInTreeAutoscaling is true): nothing to report"
    )]
    AutoscalingOff { ns: String, name: String },
    #[error("cannot list the worker pods of RayCluster {ns}/{name}: {message}")]
    Pods {
        ns: String,
        name: String,
        message: String,
    },
    #[error("GCS of RayCluster {ns}/{name} unreachable at {address} ({source_of}): {message}")]
    Gcs {
        ns: String,
        name: String,
        address: String,
        source_of: String,
        message: String,
    },
}

impl StatusError {
    /// 2 for a malformed target, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StatusError::BadTarget(_) => 2,
            _ => 1,
        }
    }
}

fn parse_target(target: &str, default_ns: &str) -> Result<(String, String), StatusError> {
    let bad = || StatusError::BadTarget(target.to_string());
    let (ns, name) = match target.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => (default_ns, target),
    };
    if ns.is_empty() || name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    Ok((ns.to_string(), name.to_string()))
}

/// Where the GCS address comes from, for messages.
fn gcs_source(obj: &DynamicObject, port: u16) -> String {
    match obj.annotations().get(GCS_ADDRESS_ANNOTATION) {
        Some(a) if !a.trim().is_empty() => format!("annotation {GCS_ADDRESS_ANNOTATION}"),
        _ => format!("head service {}-head-svc, port {port}", obj.name_any()),
    }
}

/// Reads everything and renders the text (the `ray status` layout, the plan, the Kubernetes
/// section).
pub async fn cluster_status(
    client: kube::Client,
    o: &StatusOptions,
) -> Result<String, StatusError> {
    let (ns, name) = parse_target(&o.target, client.default_namespace())?;
    let gvk = GroupVersionKind::gvk("ray.io", "v1", "RayCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "rayclusters");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let obj = match api.get(&name).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(StatusError::NotFound { ns, name });
        }
        Err(e) => {
            return Err(StatusError::Read {
                ns,
                name,
                message: e.to_string(),
            });
        }
    };
    // The plan `autoscale run` (central) or the sidecar (in-tree) would make.
    if !super::cluster::wants_task(&obj, super::scope::Scope::Central)
        && !super::cluster::wants_task(&obj, super::scope::Scope::Sidecar)
    {
        return Err(StatusError::AutoscalingOff { ns, name });
    }
    let pod_api: Api<Pod> = Api::namespaced(client, &ns);
    let lp = ListParams::default().labels(&format!(
        "{}={name},{}=worker",
        pods::LABEL_CLUSTER,
        pods::LABEL_NODE_TYPE
    ));
    let listed = pod_api.list(&lp).await.map_err(|e| StatusError::Pods {
        ns: ns.clone(),
        name: name.clone(),
        message: e.to_string(),
    })?;
    let mut worker_pods: Vec<WorkerPod> = listed
        .items
        .iter()
        .map(|p| pods::PodInfo::from_pod(p).to_engine())
        .collect();
    worker_pods.sort_by(|a, b| a.name.cmp(&b.name));

    let (address, source_of) = match &o.gcs {
        Some(a) => (a.clone(), "--gcs".to_string()),
        None => {
            let port = o.planning.gcs_port;
            (gcs_address(&obj, port), gcs_source(&obj, port))
        }
    };
    let gcs_err = |message: String| StatusError::Gcs {
        ns: ns.clone(),
        name: name.clone(),
        address: address.clone(),
        source_of: source_of.clone(),
        message,
    };
    let timeout = o.planning.gcs_timeout;
    let opts = GcsOptions {
        connect_timeout: timeout,
        request_timeout: timeout,
        max_attempts: 1,
        ..Default::default()
    };
    let mut gcs = GcsClient::lazy(&address, opts).map_err(|e| gcs_err(e.to_string()))?;
    let state = tokio::time::timeout(timeout * 2, gcs.get_cluster_resource_state(0))
        .await
        .map_err(|_| gcs_err(format!("no answer within {:?}", timeout * 2)))?
        .map_err(|e| gcs_err(e.to_string()))?;
    let snapshot = RaySnapshot::from_proto(&state);

    let mut rc = serde_json::to_value(&obj).map_err(|e| StatusError::Read {
        ns: ns.clone(),
        name: name.clone(),
        message: e.to_string(),
    })?;
    rc["apiVersion"] = json!("ray.io/v1");
    rc["kind"] = json!("RayCluster");
    crate::defaulting::apply_crd_defaults(&mut rc);
    let input = EngineInput {
        ray_cluster: rc.clone(),
        pods: worker_pods.clone(),
        ray: snapshot.to_engine(),
        options: o.planning.engine_options(),
    };
    let plan = crate::autoscale::plan(&input);
    let mut out = crate::autoscale::status::render(&plan, &o.now);
    // The separators of `ray status` are as wide as its header.
    let width = out.lines().next().map_or(60, |l| l.chars().count());
    out.push('\n');
    out.push_str(&crate::autoscale::status::render_kubernetes(
        &rc,
        &worker_pods,
        &format!("{address} ({source_of})"),
        width,
    ));
    Ok(out)
}

/// Entry point of the Kubernetes form: prints the status, or the error on stderr.
pub fn run(o: StatusOptions) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| StatusError::Client(e.to_string()))?;
        cluster_status(client, &o).await
    });
    match res {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("ns/rc", "default").unwrap(),
            ("ns".to_string(), "rc".to_string())
        );
        assert_eq!(
            parse_target("rc", "default").unwrap(),
            ("default".to_string(), "rc".to_string())
        );
        for bad in ["/rc", "ns/", "a/b/c", ""] {
            let e = parse_target(bad, "default").unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("<namespace>/<cluster>"), "{e}");
        }
    }
}
