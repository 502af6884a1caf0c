//! The TLS side of `https://` probes and webhooks: which certificates are trusted, and what a
//! failed handshake is called in a probe's reason or an alert's delivery error.
//!
//! The stack, and why:
//! - **rustls** (with the `ring` provider): a TLS library in Rust, maintained by the rustls
//!   project and used by most of the Rust ecosystem. `ring` rather than the default aws-lc-rs,
//!   because ring builds with a plain C compiler: the static musl build and the
//!   x86_64-pc-windows-gnu cross build need no cmake or NASM.
//! - **tokio-rustls**: rustls over the tokio sockets tend already uses (same maintainers).
//! - **rustls-platform-verifier** for trust, rather than rustls-native-certs alone: on Windows
//!   it asks the OS's own chain engine (CertGetCertificateChain), so it sees what Windows
//!   trusts, including corporate CAs pushed by group policy and the roots Windows fetches on
//!   demand (a fresh Windows store holds only part of its roots until then, which a list
//!   copied out of the store, as rustls-native-certs makes, would miss). On Linux it is
//!   rustls-native-certs (the system's CA bundle, `SSL_CERT_FILE`/`SSL_CERT_DIR`) with
//!   webpki, so there is no difference there. Maintained by the rustls project too, used by
//!   reqwest and uv, and it cross-builds for both targets (windows-sys only).
//!
//! `ca_file` adds roots for a private CA on top of the OS's. It is checked by webpki against
//! those roots first, and only a chain that does not lead to them goes to the OS. Not the
//! platform verifier's own "extra roots": on Windows that is a chain engine with an exclusive
//! root store, which needs Windows 8 and which Wine refuses ("Invalid parameter"), and a
//! private CA should not depend on either. It also keeps `ca_file` working where the OS has no
//! roots at all (a minimal container without a CA bundle).
//!
//! `insecure_skip_verify` accepts any certificate (the handshake's signatures are still
//! checked, so the session is at least bound to the certificate the server sent).

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

pub use tend_core::health::TlsOptions;

/// Why a TLS connection could not be set up or completed. Part of
/// [`HttpError::Tls`](crate::http::HttpError::Tls), whose text is `TLS: <this> for <host>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// `ca_file` could not be read or holds no certificate.
    #[error("cannot use ca_file {path}: {problem}")]
    CaFile {
        /// the file
        path: String,
        /// what is wrong with it
        problem: String,
    },
    /// The verifier could not be built (on Linux: no CA bundle found).
    #[error("no trust store: {0}")]
    Setup(String),
    /// The server's certificate was refused.
    #[error("{0}")]
    Certificate(String),
    /// Anything else in the handshake (the peer is not TLS, refused our hello, closed).
    #[error("handshake failed: {0}")]
    Handshake(String),
}

/// How long a loaded trust store is used before `ca_file` and the OS's roots are read again,
/// so a renewed private CA or an updated CA bundle is picked up without a restart or a
/// reload. Loading costs a few milliseconds; a probe every second would pay it every time
/// without this.
const REFRESH: Duration = Duration::from_secs(300);

/// The client side of TLS for one probe or one notifier: the options, and the rustls config
/// made from them on first use (loading the OS's roots reads files, so it happens on the
/// thread that runs the exchange, never on the supervisor's) and reused for [`REFRESH`].
pub struct TlsClient {
    options: TlsOptions,
    config: Mutex<Option<(Instant, Arc<ClientConfig>)>>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client for `options`; nothing is loaded yet.
    #[must_use]
    pub fn new(options: TlsOptions) -> Self {
        Self {
            options,
            config: Mutex::new(None),
        }
    }

    /// The options it was made from.
    #[must_use]
    pub fn options(&self) -> &TlsOptions {
        &self.options
    }

    /// The rustls config, built on the first call and again after [`REFRESH`]. A failure is
    /// not kept: the next request tries again (a CA bundle installed meanwhile is then
    /// picked up).
    ///
    /// Blocking: may read `ca_file` and the system's CA bundle.
    pub(crate) fn config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let mut slot = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, c)) = &*slot
            && at.elapsed() < REFRESH
        {
            return Ok(c.clone());
        }
        let built = Arc::new(build(&self.options)?);
        *slot = Some((Instant::now(), built.clone()));
        Ok(built)
    }
}

/// The ring provider. rustls 0.23.48 marks it deprecated because ring has no post-quantum
/// key exchange (X25519MLKEM768 needs aws-lc-rs); that is the price of a stack that
/// cross-builds with a C compiler alone (see the module comment) and stays small. The
/// classical X25519 / P-256 exchanges it offers are what every chat webhook accepts.
#[allow(deprecated, reason = "ring on purpose: see above")]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(options: &TlsOptions) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let platform = || {
        rustls_platform_verifier::Verifier::new(provider.clone())
            .map_err(|e| TlsError::Setup(setup_error(&e)))
    };
    let verifier: Arc<dyn ServerCertVerifier> = if options.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate(provider.clone()))
    } else if let Some(path) = &options.ca_file {
        let mut roots = RootCertStore::empty();
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|e| TlsError::CaFile {
                path: path.display().to_string(),
                problem: format!("not a usable CA certificate: {e}"),
            })?;
        }
        let private =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsError::Setup(e.to_string()))?;
        // Without the OS's roots (none installed), the private CA alone still works.
        let os = platform()
            .ok()
            .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>);
        Arc::new(PrivateCaFirst { private, os })
    } else {
        Arc::new(platform()?)
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // tend speaks HTTP/1.1 only; saying so keeps a server from choosing h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn setup_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::General(msg) if msg.contains("No CA certificates") => {
            "no CA certificates found on this system (install the ca-certificates package, \
             set SSL_CERT_FILE, or give ca_file)"
                .into()
        }
        e => e.to_string(),
    }
}

/// The certificates of a PEM file (`ca_file`).
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |problem: String| TlsError::CaFile {
        path: path.display().to_string(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(err("no certificate in it".into()));
    }
    Ok(certs)
}

/// `ca_file`: a chain to one of its roots is judged by webpki (name, validity, usage); a chain
/// to anything else is the OS's to judge, as without `ca_file`.
#[derive(Debug)]
struct PrivateCaFirst {
    private: Arc<WebPkiServerVerifier>,
    os: Option<Arc<dyn ServerCertVerifier>>,
}

impl ServerCertVerifier for PrivateCaFirst {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let private = self.private.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match (private, &self.os) {
            // Not issued under ca_file's roots: the OS decides. BadSignature too: webpki says
            // that when an issuer has the name of a ca_file root but another key (a CA that
            // was re-keyed, two test CAs with one name), which is also "not ours".
            (
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                )),
                Some(os),
            ) => os.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            // Trusted, or issued under ca_file's roots and wrong in another way (name,
            // dates), or no OS roots to ask.
            (result, _) => result,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.private.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.private.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.private.supported_verify_schemes()
    }
}

/// `insecure_skip_verify = true`: every certificate is accepted for every name. The
/// handshake signatures are still verified with the provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The name to send as SNI and to verify the certificate against: a DNS name, or an IP
/// address (no SNI is sent for those, as RFC 6066 says; the certificate needs an IP SAN).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| TlsError::Handshake(format!("`{host}` is not a valid TLS server name: {e}")))
}

/// Names a failed handshake for the operator. `e` is what tokio-rustls returned: an
/// `io::Error` that wraps a `rustls::Error` when TLS itself failed.
pub(crate) fn handshake_error(e: &io::Error) -> TlsError {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return TlsError::Handshake(match e.kind() {
            io::ErrorKind::UnexpectedEof => "the server closed the connection during the \
                                             handshake (is it https on that port?)"
                .into(),
            _ => e.to_string(),
        });
    };
    describe(tls)
}

fn describe(e: &rustls::Error) -> TlsError {
    use CertificateError as C;
    let cert = |s: &str| TlsError::Certificate(s.to_owned());
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => cert("certificate not trusted (unknown issuer)"),
            C::NotValidForName => cert("certificate not valid for this name"),
            C::NotValidForNameContext { presented, .. } => TlsError::Certificate(format!(
                "certificate not valid for this name (it is for {})",
                if presented.is_empty() {
                    "no name".into()
                } else {
                    presented.join(", ")
                }
            )),
            C::Expired | C::ExpiredContext { .. } => cert("certificate expired"),
            C::NotValidYet | C::NotValidYetContext { .. } => cert("certificate not valid yet"),
            C::Revoked => cert("certificate revoked"),
            C::BadSignature => cert("certificate has a bad signature"),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                cert("certificate not meant for a TLS server (extended key usage)")
            }
            C::Other(other) => TlsError::Certificate(format!("certificate refused: {other}")),
            other => TlsError::Certificate(format!("certificate refused: {other:?}")),
        },
        rustls::Error::AlertReceived(alert) => {
            TlsError::Handshake(format!("the server refused it ({alert:?})"))
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TlsError::Handshake(format!("{e} (is it https on that port?)"))
        }
        other => TlsError::Handshake(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_read_as_sentences() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(
            describe(&unknown).to_string(),
            "certificate not trusted (unknown issuer)"
        );
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, unknown);
        assert_eq!(
            handshake_error(&wrapped).to_string(),
            "certificate not trusted (unknown issuer)"
        );
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert!(
            handshake_error(&eof)
                .to_string()
                .contains("closed the connection during the handshake")
        );
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(describe(&expired).to_string(), "certificate expired");
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("api.example.com").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("::1").unwrap(),
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn ca_file_problems_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = read_ca_file(&missing).unwrap_err().to_string();
        assert!(e.starts_with("cannot use ca_file "), "{e}");
        assert!(e.contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let e = read_ca_file(&empty).unwrap_err().to_string();
        assert!(e.contains("no certificate in it"), "{e}");
    }
}
