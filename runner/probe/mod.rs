//! How the runner touches the running app: HTTP requests and Prometheus scrapes.

pub mod http;
pub mod metrics;
