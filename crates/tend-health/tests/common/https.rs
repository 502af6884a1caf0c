//! A local https server with a CA made in the test (rcgen), for the TLS tests of probes and
//! webhooks. Real sockets and a real rustls server: nothing about TLS is mocked.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a different subset"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{Seen, read_request};

/// A test CA (its PEM written to `ca_file`) and a server config whose certificate it signed.
pub struct Pki {
    /// Holds `ca_file`.
    pub dir: tempfile::TempDir,
    /// The CA certificate, PEM: what `ca_file` points at.
    pub ca_file: PathBuf,
    /// A rustls server presenting a certificate for the names given to [`pki`].
    pub server: Arc<ServerConfig>,
}

/// A new CA, and a server certificate signed by it for `names` (DNS names or IP addresses).
pub fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tend test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut leaf_params = CertificateParams::new(names.clone()).unwrap();
    leaf_params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    #[allow(deprecated, reason = "the ring provider, as tend's client uses")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .unwrap();
    Pki {
        dir,
        ca_file,
        server: Arc::new(server),
    }
}

/// What one TLS connection to the server brought.
#[derive(Debug)]
pub enum TlsSeen {
    /// A request after a completed handshake, with the SNI the client sent.
    Request { sni: Option<String>, seen: Seen },
    /// The handshake failed on the server's side (e.g. the client refused the certificate).
    HandshakeFailed(String),
}

impl TlsSeen {
    /// The request, or a panic naming the handshake failure.
    pub fn request(self) -> (Option<String>, Seen) {
        match self {
            Self::Request { sni, seen } => (sni, seen),
            Self::HandshakeFailed(e) => panic!("expected a request, the handshake failed: {e}"),
        }
    }
}

/// An https server on 127.0.0.1 that answers the n-th connection with `responses[n]` (raw
/// bytes, written as is after the request was read) and reports what each connection
/// brought. After the list it stops accepting.
pub async fn https_server(
    config: Arc<ServerConfig>,
    responses: Vec<&'static str>,
) -> (SocketAddr, mpsc::UnboundedReceiver<TlsSeen>) {
    tend_health::init_network().expect("WSAStartup");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        for response in responses {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let mut tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(TlsSeen::HandshakeFailed(e.to_string()));
                    continue;
                }
            };
            let sni = tls.get_ref().1.server_name().map(str::to_owned);
            if let Some(seen) = read_request(&mut tls).await {
                let _ = tx.send(TlsSeen::Request { sni, seen });
            }
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    (addr, rx)
}

/// A plain TCP server that writes `banner` at once to every connection and closes it: what
/// an https client meets when the port speaks plain HTTP.
pub async fn plain_banner_server(banner: &'static str) -> SocketAddr {
    tend_health::init_network().expect("WSAStartup");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(banner.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    addr
}
