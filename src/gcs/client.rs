//! gRPC client for the GCS `AutoscalerStateService`, with timeouts, bounded retries and
//! reconnects with exponential backoff.

use super::proto::{
    self, DrainNodeReason, DrainNodeRequest, GetClusterResourceStateRequest,
    GetClusterStatusRequest, ReportAutoscalingStateRequest,
    autoscaler_state_service_client::AutoscalerStateServiceClient,
};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The fully-qualified gRPC service raygate needs from the GCS.
pub const SERVICE: &str = "ray.rpc.autoscaler.AutoscalerStateService";

/// Connection and retry knobs.
#[derive(Debug, Clone)]
pub struct GcsOptions {
    /// Timeout of one TCP/HTTP2 connection attempt.
    pub connect_timeout: Duration,
    /// Timeout of one RPC attempt.
    pub request_timeout: Duration,
    /// Attempts per call (connect + RPC), at least 1.
    pub max_attempts: u32,
    /// First backoff between attempts; doubled after each failure up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for GcsOptions {
    fn default() -> Self {
        GcsOptions {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Why a GCS call failed.
#[derive(Debug, thiserror::Error)]
pub enum GcsError {
    #[error("invalid GCS address {address:?}: {reason} (expected HOST:PORT, e.g. 127.0.0.1:6379)")]
    InvalidAddress { address: String, reason: String },
    #[error("GCS at {address} is unreachable after {attempts} attempt(s): {last_error}")]
    Unreachable {
        address: String,
        attempts: u32,
        last_error: String,
    },
    #[error(
        "the server at {address} does not serve {SERVICE} ({message}); raygate needs a Ray GCS \
         with the autoscaler v2 state service (Ray >= 2.8; tested with 2.60.0) — is this the \
         GCS port of a Ray head?"
    )]
    ServiceMissing { address: String, message: String },
    #[error("GCS at {address} rejected {method}: {code:?}: {message}")]
    Rpc {
        address: String,
        method: &'static str,
        code: Code,
        message: String,
    },
    #[error("GCS at {address} answered {method} without {field}")]
    MissingField {
        address: String,
        method: &'static str,
        field: &'static str,
    },
}

/// Ray's answer to a `DrainNode` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainOutcome {
    /// The node transitions to DRAINING (or was already dead).
    Accepted,
    /// The raylet refused (e.g. the node runs tasks/actors for an idle-termination drain).
    Rejected { reason: String },
}

/// A client of one GCS. Cheap to clone (the channel is shared).
#[derive(Debug, Clone)]
pub struct GcsClient {
    address: String,
    endpoint: Endpoint,
    client: Option<AutoscalerStateServiceClient<Channel>>,
    options: GcsOptions,
}

fn endpoint_for(address: &str, options: &GcsOptions) -> Result<Endpoint, GcsError> {
    let invalid = |reason: &str| GcsError::InvalidAddress {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let hostport = address
        .strip_prefix("http://")
        .unwrap_or(address)
        .trim_end_matches('/');
    if hostport.is_empty() || hostport.contains('/') || hostport.starts_with("https://") {
        return Err(invalid("not HOST:PORT"));
    }
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| invalid("missing :PORT"))?;
    if host.is_empty() {
        return Err(invalid("empty host"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("port is not a number in 1..=65535"))?;
    if port == 0 {
        return Err(invalid("port 0"));
    }
    Endpoint::from_shared(format!("http://{host}:{port}"))
        .map_err(|e| invalid(&e.to_string()))
        .map(|e| {
            e.connect_timeout(options.connect_timeout)
                .timeout(options.request_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5))
        })
}

/// Retry only what a reconnect can fix; everything else is final.
fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

impl GcsClient {
    /// Connects to the GCS at `HOST:PORT` and checks that it serves the autoscaler state
    /// service (one `GetClusterResourceState` call). Fails with [`GcsError::ServiceMissing`]
    /// when the server answers UNIMPLEMENTED, and with [`GcsError::Unreachable`] when no
    /// connection could be made within the retry budget.
    pub async fn connect(address: &str, options: GcsOptions) -> Result<Self, GcsError> {
        let mut client = Self::lazy(address, options)?;
        client.get_cluster_resource_state(0).await?;
        Ok(client)
    }

    /// A client that connects on first use (no I/O here).
    pub fn lazy(address: &str, options: GcsOptions) -> Result<Self, GcsError> {
        let endpoint = endpoint_for(address, &options)?;
        Ok(GcsClient {
            address: address.to_string(),
            endpoint,
            client: None,
            options,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    async fn stub(&mut self) -> Result<AutoscalerStateServiceClient<Channel>, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let channel = tokio::time::timeout(self.options.connect_timeout, self.endpoint.connect())
            .await
            .map_err(|_| format!("connect timed out after {:?}", self.options.connect_timeout))?
            .map_err(|e| format!("connect failed: {e}"))?;
        let c =
            AutoscalerStateServiceClient::new(channel).max_decoding_message_size(256 * 1024 * 1024);
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Runs `call` with per-attempt timeout, reconnecting with exponential backoff on transient
    /// failures, at most `max_attempts` times.
    async fn with_retry<T, F, Fut>(
        &mut self,
        method: &'static str,
        mut call: F,
    ) -> Result<T, GcsError>
    where
        F: FnMut(AutoscalerStateServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let attempts = self.options.max_attempts.max(1);
        let mut backoff = self.options.initial_backoff;
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.options.max_backoff);
            }
            let stub = match self.stub().await {
                Ok(s) => s,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            match tokio::time::timeout(self.options.request_timeout, call(stub)).await {
                Err(_) => {
                    last_error = format!(
                        "{method} timed out after {:?}",
                        self.options.request_timeout
                    );
                    self.client = None;
                }
                Ok(Ok(resp)) => return Ok(resp.into_inner()),
                Ok(Err(status)) if status.code() == Code::Unimplemented => {
                    return Err(GcsError::ServiceMissing {
                        address: self.address.clone(),
                        message: format!("{method}: {}", status.message()),
                    });
                }
                Ok(Err(status)) if is_transient(status.code()) => {
                    last_error = format!("{method}: {:?}: {}", status.code(), status.message());
                    self.client = None;
                }
                Ok(Err(status)) => {
                    return Err(GcsError::Rpc {
                        address: self.address.clone(),
                        method,
                        code: status.code(),
                        message: status.message().to_string(),
                    });
                }
            }
        }
        Err(GcsError::Unreachable {
            address: self.address.clone(),
            attempts,
            last_error,
        })
    }

    /// `GetClusterResourceState`: nodes, pending demands, pending placement groups and
    /// `request_resources` constraints, with the state version.
    pub async fn get_cluster_resource_state(
        &mut self,
        last_seen_version: i64,
    ) -> Result<proto::ClusterResourceState, GcsError> {
        let reply = self
            .with_retry("GetClusterResourceState", |mut c| async move {
                c.get_cluster_resource_state(GetClusterResourceStateRequest {
                    last_seen_cluster_resource_state_version: last_seen_version,
                })
                .await
            })
            .await?;
        reply
            .cluster_resource_state
            .ok_or_else(|| GcsError::MissingField {
                address: self.address.clone(),
                method: "GetClusterResourceState",
                field: "cluster_resource_state",
            })
    }

    /// `ReportAutoscalingState`: what the autoscaler decided (pending launches, infeasible
    /// demands, failures); `ray status` on the head shows it when autoscaler v2 is enabled.
    pub async fn report_autoscaling_state(
        &mut self,
        state: proto::AutoscalingState,
    ) -> Result<(), GcsError> {
        self.with_retry("ReportAutoscalingState", |mut c| {
            let state = state.clone();
            async move {
                c.report_autoscaling_state(ReportAutoscalingStateRequest {
                    autoscaling_state: Some(state),
                })
                .await
            }
        })
        .await
        .map(|_| ())
    }

    /// `GetClusterStatus`: the last reported autoscaling state plus the cluster resource state.
    pub async fn get_cluster_status(&mut self) -> Result<proto::GetClusterStatusReply, GcsError> {
        self.with_retry("GetClusterStatus", |mut c| async move {
            c.get_cluster_status(GetClusterStatusRequest {}).await
        })
        .await
    }

    /// `DrainNode` with reason IDLE_TERMINATION (rejectable: Ray refuses while the node runs
    /// work) and a deadline in Unix milliseconds (0 = none). Idempotent, so retried.
    pub async fn drain_node_idle(
        &mut self,
        node_id: &[u8],
        reason_message: &str,
        deadline_timestamp_ms: i64,
    ) -> Result<DrainOutcome, GcsError> {
        self.drain_node(
            node_id,
            DrainNodeReason::IdleTermination,
            reason_message,
            deadline_timestamp_ms,
        )
        .await
    }

    /// `DrainNode` with an explicit reason.
    pub async fn drain_node(
        &mut self,
        node_id: &[u8],
        reason: DrainNodeReason,
        reason_message: &str,
        deadline_timestamp_ms: i64,
    ) -> Result<DrainOutcome, GcsError> {
        let req = DrainNodeRequest {
            node_id: node_id.to_vec(),
            reason: reason as i32,
            reason_message: reason_message.to_string(),
            deadline_timestamp_ms,
        };
        let reply = self
            .with_retry("DrainNode", |mut c| {
                let req = req.clone();
                async move { c.drain_node(req).await }
            })
            .await?;
        Ok(if reply.is_accepted {
            DrainOutcome::Accepted
        } else {
            DrainOutcome::Rejected {
                reason: reply.rejection_reason_message,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_validated() {
        let o = GcsOptions::default();
        assert!(endpoint_for("127.0.0.1:6379", &o).is_ok());
        assert!(endpoint_for("http://127.0.0.1:6379", &o).is_ok());
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            ":6379",
            "127.0.0.1:99999",
            "a/b:1",
            "h:0",
        ] {
            let e = endpoint_for(bad, &o).unwrap_err();
            assert!(e.to_string().contains("HOST:PORT"), "{bad}: {e}");
        }
    }
}
