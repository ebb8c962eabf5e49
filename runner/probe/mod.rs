//! How the runner touches the running app: HTTP requests, Prometheus scrapes, and the Node inspector
//! (Chrome DevTools Protocol).

pub mod http;
pub mod inspector;
pub mod metrics;
pub mod tunnel;
