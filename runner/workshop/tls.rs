//! The workshop server's HTTPS: a certificate it makes for the addresses it listens on (rcgen), or
//! one the instructor gives; rustls with the ring provider. Participants' machines do not trust a
//! made certificate, so the join address carries its SHA-256 ([`fingerprint`]) and the joining
//! `start` accepts exactly that certificate and no other ([`PinnedCertificate`]): nobody on the
//! room's network can stand in for the instructor's server.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The server's certificate chain and key, and the fingerprint of its own certificate.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Lower-case hex SHA-256 of the end-entity certificate (DER).
    pub fingerprint: String,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `ip` (and `localhost`, `127.0.0.1` when it is loopback).
pub fn make_identity(ip: IpAddr) -> Result<ServerIdentity> {
    let mut names = vec![ip.to_string()];
    if ip.is_loopback() {
        names.push("localhost".into());
        names.push("127.0.0.1".into());
    }
    names.dedup();
    let made = rcgen::generate_simple_self_signed(names)
        .context("Failed to make the workshop server's certificate")?;
    let der = made.cert.der().clone();
    Ok(ServerIdentity {
        fingerprint: fingerprint(&der),
        chain: vec![der],
        key: PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into()),
    })
}

/// The instructor's own certificate chain and key (PEM files).
pub fn load_identity(cert: &Path, key: &Path) -> Result<ServerIdentity> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("Failed to read the certificate {}", cert.display()))?
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    let Some(first) = chain.first() else {
        bail!(
            "{} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            cert.display()
        );
    };
    let fingerprint = fingerprint(first);
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    Ok(ServerIdentity {
        chain,
        key,
        fingerprint,
    })
}

/// Hex SHA-256 of a certificate's DER.
pub fn fingerprint(der: &CertificateDer<'_>) -> String {
    Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The server's TLS configuration.
pub fn server_config(identity: &ServerIdentity) -> Result<rustls::ServerConfig> {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .context("The workshop server's certificate and key do not belong together")
}

/// A client configuration that accepts one certificate: the one whose SHA-256 is `pin`.
pub fn pinned_client_config(pin: &str) -> Result<rustls::ClientConfig> {
    // reqwest checks for the process's provider even with a configuration of its own.
    crate::util::crypto::ensure_provider();
    let pin = pin.trim().to_ascii_lowercase();
    if pin.len() != 64 || !pin.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("the join address's pin is not a SHA-256 (64 hex digits): {pin:?}");
    }
    let provider = provider();
    Ok(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertificate { pin, provider }))
            .with_no_client_auth(),
    )
}

/// Accepts the server's certificate when its SHA-256 is the pin (names and dates do not matter: the
/// pin names this very certificate), and checks the handshake's signatures as usual.
#[derive(Debug)]
pub struct PinnedCertificate {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate is not the one the join address names".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
