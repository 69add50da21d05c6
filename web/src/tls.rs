//! Serving the UI over HTTPS: rustls (TLS 1.2 and 1.3, the aws-lc-rs
//! provider the rest of imi uses) with a certificate chain and key the node
//! holds.
//!
//! Each connection's handshake runs in a task of its own, bounded in number
//! and in time, and only finished handshakes reach the HTTP server: a client
//! that stalls or fails its handshake (one that does not trust the
//! certificate, a scanner) holds up no other client, and is logged at debug
//! level.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, error};

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the
/// kernel's backlog.
const MAX_HANDSHAKES: usize = 256;
/// Finished handshakes waiting for the HTTP server to take them.
const READY_QUEUE: usize = 64;

/// The certificate chain and private key the UI is served with over HTTPS,
/// checked and ready for rustls. Cloning shares it.
#[derive(Clone)]
pub struct TlsIdentity {
    config: Arc<ServerConfig>,
    chain: Arc<[CertificateDer<'static>]>,
}

/// A certificate chain and key that cannot serve HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The chain cannot be read or used.
    #[error("the certificate chain is not usable: {reason}")]
    Certificate {
        /// What is wrong with it.
        reason: String,
    },
    /// The key cannot be read or used.
    #[error("the private key is not usable: {reason}")]
    Key {
        /// What is wrong with it.
        reason: String,
    },
    /// The key is not the one the first certificate of the chain certifies.
    #[error("the private key does not belong to the certificate (the first of the chain)")]
    KeyMismatch,
}

impl TlsIdentity {
    /// Reads a PEM certificate chain (the server's certificate first, then
    /// the CA certificates it needs) and the matching unencrypted private
    /// key (PKCS#8, or PKCS#1 / SEC1) in PEM.
    pub fn from_pem(certificate_chain: &str, private_key: &str) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(certificate_chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Certificate {
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Certificate {
                reason: "it holds no -----BEGIN CERTIFICATE----- block".to_owned(),
            });
        }
        let key =
            PrivateKeyDer::from_pem_slice(private_key.as_bytes()).map_err(|e| TlsError::Key {
                reason: match e {
                    pem::Error::NoItemsFound => {
                        "it holds no unencrypted -----BEGIN PRIVATE KEY----- block".to_owned()
                    }
                    other => other.to_string(),
                },
            })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Key {
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    TlsError::KeyMismatch
                }
                rustls::Error::InvalidCertificate(reason) => TlsError::Certificate {
                    reason: format!("the first certificate cannot be read ({reason:?})"),
                },
                other => TlsError::Key {
                    reason: other.to_string(),
                },
            })?;
        // The UI speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsIdentity {
            config: Arc::new(config),
            chain: chain.into(),
        })
    }

    /// The certificates served, the server's first (DER).
    pub fn certificate_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Connections whose TLS handshake has finished, for `axum::serve`.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts connections on `listener` (bound to `local`) and runs their
    /// handshakes with `identity`, until dropped.
    pub(crate) fn new(listener: TcpListener, local: SocketAddr, identity: &TlsIdentity) -> Self {
        let (ready_tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = TlsAcceptor::from(Arc::clone(&identity.config));
        let accepting = tokio::spawn(accept_loop(listener, acceptor, ready_tx));
        TlsListener {
            ready,
            local,
            accepting,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Also ends the handshakes in progress, which the loop owns.
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop never ends on its own; if it did, accept
            // nothing more rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let mut handshakes = JoinSet::new();
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(connection) => connection,
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                // Out of file descriptors, say: wait for some to close.
                error!(error = %err, "web UI cannot accept connections");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Small responses go out at once.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        handshakes.spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(err)) => debug!(peer = %peer, error = %err, "tls handshake failed"),
                Err(_) => debug!(peer = %peer, "tls handshake timed out"),
            }
        });
        while handshakes.try_join_next().is_some() {}
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
