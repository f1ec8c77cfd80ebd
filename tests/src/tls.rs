//! A loopback TLS terminator in front of a plain server (the fake LiveKit
//! server), with a certificate from a private CA minted for the test: what
//! a company's own LiveKit deployment behind an internal CA looks like.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The terminator; dropping it stops accepting (open connections end with
/// their peers).
pub struct TlsTerminator {
    addr: SocketAddr,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
    _tasks: JoinSet<()>,
}

impl TlsTerminator {
    /// Mints a CA and a certificate for `127.0.0.1` and `localhost` signed
    /// by it, writes the CA to a PEM file, and forwards every TLS
    /// connection on a new loopback port to `backend` in the clear.
    pub async fn start(backend: SocketAddr) -> TlsTerminator {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "agent-host test private CA");
        let ca_cert = ca.self_signed(&ca_key).expect("a self-signed CA");
        let key = KeyPair::generate().expect("a server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server parameters")
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("a server certificate");

        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca_file = dir.path().join("private-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("writing the CA file");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![server.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("the server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the TLS terminator");
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not trust the CA aborts here.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsTerminator {
            addr,
            ca_file,
            _dir: dir,
            _tasks: tasks,
        }
    }

    /// `wss://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("wss://{}", self.addr)
    }

    /// The PEM file of the private CA.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}
