//! Exact Kubernetes resource quantities ("500m", "512Mi", "1e3", "0.5Gi"). Pure.
