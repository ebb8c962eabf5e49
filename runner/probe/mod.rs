//! How the runner touches the running app: HTTP requests, the Node inspector (Chrome DevTools
//! Protocol), and a port-forward into its container. (What a Prometheus scrape says is read by
//! [`crate::util::prometheus`], which the lab format's lint uses too.)

pub mod http;
pub mod tunnel;

/// The Chrome DevTools Protocol client is the crate `cdp-client` (crates/cdp-client).
pub use cdp_client as inspector;
