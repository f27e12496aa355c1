//! A stand-in Ray GCS for tests: a tonic server on 127.0.0.1 implementing the same
//! `ray.rpc.autoscaler.AutoscalerStateService` messages as Ray (raygate's generated server trait),
//! whose state the test drives: nodes (instance id = pod name), pending demands, drain answers,
//! and failure modes (hold the next `GetClusterResourceState` until released; never answer).
//! The gRPC routing is written here with tonic's server building blocks and the prost message
//! types raygate generates, so the library needs no generated server code.
//!
//! Include with `#[path = "support/fake_gcs.rs"] mod fake_gcs;`.
#![allow(dead_code)]

use raygate::gcs::proto::*;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::Notify;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::{Request, Response, Status};

/// One Ray node as the fake reports it.
#[derive(Debug, Clone)]
pub struct FakeNode {
    pub instance_id: String,
    pub node_type: String,
    pub head: bool,
    pub total: BTreeMap<String, f64>,
    pub available: BTreeMap<String, f64>,
    pub idle_ms: i64,
    pub status: NodeStatus,
}

impl FakeNode {
    /// A worker with `cpus` CPUs, all free and idle for `idle_ms` (0 = busy, none free).
    pub fn worker(pod: &str, group: &str, cpus: f64, idle_ms: i64) -> Self {
        let free = if idle_ms > 0 { cpus } else { 0.0 };
        FakeNode {
            instance_id: pod.into(),
            node_type: group.into(),
            head: false,
            total: BTreeMap::from([("CPU".into(), cpus)]),
            available: BTreeMap::from([("CPU".into(), free)]),
            idle_ms,
            status: if idle_ms > 0 {
                NodeStatus::Idle
            } else {
                NodeStatus::Running
            },
        }
    }

    /// A head with no CPUs (`num-cpus: 0`).
    pub fn head() -> Self {
        FakeNode {
            instance_id: "head".into(),
            node_type: "headgroup".into(),
            head: true,
            total: BTreeMap::from([("node:__internal_head__".into(), 1.0)]),
            available: BTreeMap::from([("node:__internal_head__".into(), 1.0)]),
            idle_ms: 0,
            status: NodeStatus::Running,
        }
    }
}

/// What the test controls.
#[derive(Debug, Default)]
pub struct FakeState {
    pub version: i64,
    pub nodes: Vec<FakeNode>,
    /// (shape, count) of pending tasks/actors.
    pub demands: Vec<(BTreeMap<String, f64>, i64)>,
    /// Instance ids whose drain was requested and accepted, in order.
    pub drained: Vec<String>,
    /// Instance ids whose drain is rejected.
    pub reject_drain: BTreeSet<String>,
    /// Hold the next GetClusterResourceState until [`FakeGcs::release`].
    pub hold_next: bool,
    /// Never answer GetClusterResourceState (a stuck GCS).
    pub stuck: bool,
    pub state_calls: u64,
}

#[derive(Clone)]
struct Service {
    state: Arc<Mutex<FakeState>>,
    arrived: Arc<Notify>,
    release: Arc<Notify>,
}

fn node_id(instance: &str) -> Vec<u8> {
    // 28 bytes like Ray's NodeID, derived from the name.
    let mut id = vec![0u8; 28];
    for (i, b) in instance.bytes().enumerate() {
        id[i % 28] ^= b.wrapping_add(i as u8);
    }
    id[27] = instance.len() as u8;
    id
}

fn to_proto(s: &FakeState) -> ClusterResourceState {
    ClusterResourceState {
        cluster_resource_state_version: s.version,
        last_seen_autoscaler_state_version: 0,
        node_states: s
            .nodes
            .iter()
            .map(|n| NodeState {
                node_id: node_id(&n.instance_id),
                instance_id: if n.head {
                    String::new()
                } else {
                    n.instance_id.clone()
                },
                ray_node_type_name: n.node_type.clone(),
                available_resources: n.available.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                total_resources: n.total.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                status: n.status as i32,
                idle_duration_ms: n.idle_ms,
                node_ip_address: "127.0.0.1".into(),
                ..Default::default()
            })
            .collect(),
        pending_resource_requests: s
            .demands
            .iter()
            .map(|(shape, count)| ResourceRequestByCount {
                request: Some(ResourceRequest {
                    resources_bundle: shape.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    ..Default::default()
                }),
                count: *count,
            })
            .collect(),
        cluster_session_name: "fake".into(),
        ..Default::default()
    }
}

impl Service {
    async fn get_cluster_resource_state(
        &self,
        _req: Request<GetClusterResourceStateRequest>,
    ) -> Result<Response<GetClusterResourceStateReply>, Status> {
        let (hold, stuck) = {
            let mut s = self.state.lock().unwrap();
            s.state_calls += 1;
            let hold = s.hold_next;
            s.hold_next = false;
            (hold, s.stuck)
        };
        if stuck {
            std::future::pending::<()>().await;
        }
        if hold {
            self.arrived.notify_one();
            self.release.notified().await;
        }
        let s = self.state.lock().unwrap();
        Ok(Response::new(GetClusterResourceStateReply {
            cluster_resource_state: Some(to_proto(&s)),
        }))
    }

    async fn report_autoscaling_state(
        &self,
        _req: Request<ReportAutoscalingStateRequest>,
    ) -> Result<Response<ReportAutoscalingStateReply>, Status> {
        Ok(Response::new(ReportAutoscalingStateReply {}))
    }

    async fn get_cluster_status(
        &self,
        _req: Request<GetClusterStatusRequest>,
    ) -> Result<Response<GetClusterStatusReply>, Status> {
        let s = self.state.lock().unwrap();
        Ok(Response::new(GetClusterStatusReply {
            autoscaling_state: None,
            cluster_resource_state: Some(to_proto(&s)),
        }))
    }

    async fn drain_node(
        &self,
        req: Request<DrainNodeRequest>,
    ) -> Result<Response<DrainNodeReply>, Status> {
        let req = req.into_inner();
        let mut s = self.state.lock().unwrap();
        let Some(i) = s
            .nodes
            .iter()
            .position(|n| node_id(&n.instance_id) == req.node_id)
        else {
            // Ray accepts draining an unknown (dead) node.
            return Ok(Response::new(DrainNodeReply {
                is_accepted: true,
                rejection_reason_message: String::new(),
            }));
        };
        let inst = s.nodes[i].instance_id.clone();
        if s.reject_drain.contains(&inst) {
            return Ok(Response::new(DrainNodeReply {
                is_accepted: false,
                rejection_reason_message: "the node is running tasks".into(),
            }));
        }
        s.nodes[i].status = NodeStatus::Draining;
        s.version += 1;
        s.drained.push(inst);
        Ok(Response::new(DrainNodeReply {
            is_accepted: true,
            rejection_reason_message: String::new(),
        }))
    }
}

/// Routes `/ray.rpc.autoscaler.AutoscalerStateService/<Method>` to [`Service`].
#[derive(Clone)]
struct Router(Service);

impl tonic::server::NamedService for Router {
    const NAME: &'static str = "ray.rpc.autoscaler.AutoscalerStateService";
}

struct Unary<F>(F);

impl<Req, Resp, F, Fut> tonic::server::UnaryService<Req> for Unary<F>
where
    F: FnMut(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    type Response = Resp;
    type Future = Fut;
    fn call(&mut self, r: Request<Req>) -> Fut {
        (self.0)(r)
    }
}

async fn unary<Req, Resp, F, Fut>(req: http::Request<Body>, f: F) -> http::Response<Body>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnMut(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    let codec = tonic_prost::ProstCodec::<Resp, Req>::default();
    tonic::server::Grpc::new(codec).unary(Unary(f), req).await
}

impl tonic::codegen::Service<http::Request<Body>> for Router {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let s = self.0.clone();
        Box::pin(async move {
            let method = req
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            let res = match method.as_str() {
                "GetClusterResourceState" => {
                    unary(req, move |r| {
                        let s = s.clone();
                        async move { s.get_cluster_resource_state(r).await }
                    })
                    .await
                }
                "ReportAutoscalingState" => {
                    unary(req, move |r| {
                        let s = s.clone();
                        async move { s.report_autoscaling_state(r).await }
                    })
                    .await
                }
                "GetClusterStatus" => {
                    unary(req, move |r| {
                        let s = s.clone();
                        async move { s.get_cluster_status(r).await }
                    })
                    .await
                }
                "DrainNode" => {
                    unary(req, move |r| {
                        let s = s.clone();
                        async move { s.drain_node(r).await }
                    })
                    .await
                }
                _ => Status::unimplemented(format!("fake GCS has no {method}")).into_http(),
            };
            Ok(res)
        })
    }
}

/// The running fake; stopped on drop.
pub struct FakeGcs {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    arrived: Arc<Notify>,
    release: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeGcs {
    /// Serves on 127.0.0.1:<free port> (inside the current tokio runtime) with a head node.
    pub async fn start() -> FakeGcs {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake GCS");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(FakeState {
            version: 1,
            nodes: vec![FakeNode::head()],
            ..Default::default()
        }));
        let svc = Service {
            state: state.clone(),
            arrived: Arc::new(Notify::new()),
            release: Arc::new(Notify::new()),
        };
        let (arrived, release) = (svc.arrived.clone(), svc.release.clone());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(Router(svc))
                .serve_with_incoming(incoming)
                .await;
        });
        FakeGcs {
            addr,
            state,
            arrived,
            release,
            task,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Changes the state and bumps its version.
    pub fn set(&self, f: impl FnOnce(&mut FakeState)) {
        let mut s = self.state.lock().unwrap();
        f(&mut s);
        s.version += 1;
    }

    /// Reads the state.
    pub fn with<T>(&self, f: impl FnOnce(&FakeState) -> T) -> T {
        f(&self.state.lock().unwrap())
    }

    /// Waits until a held GetClusterResourceState call has arrived.
    pub async fn held_call_arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets the held call answer.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        self.task.abort();
    }
}
