//! The one TLS crypto provider of the process (rustls with ring). reqwest is built without a
//! provider of its own (no aws-lc and its C build), so one is installed before any client is made.

/// Installs ring as the process's rustls provider, once (a second call does nothing).
pub fn ensure_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Err only when one is installed already: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
