//! Serving the web UI next to a running node: what `imi-node run` and the
//! testnet start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use imi_protocol::Language;
use imi_web::{TlsError, TlsIdentity, WebSettings};
use tokio::sync::oneshot;
use tracing::warn;

use super::{NodeUi, UiOptions};
use crate::config::{WebConfig, WebTlsConfig};

/// A web certificate expiring sooner than this is warned about at start.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The web UI could not be started.
#[derive(Debug, thiserror::Error)]
pub enum UiStartError {
    /// The address could not be bound.
    #[error(
        "cannot serve the web UI on {address}: {source}; choose a free port in the [web] section"
    )]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The UI's tables could not be created.
    #[error("cannot prepare the web UI's sessions in the store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The settings are not usable.
    #[error(transparent)]
    Settings(#[from] imi_web::SettingsError),
    // The two variants below carry what went wrong in their message, not
    // as a source, so that a printed error chain says it once.
    /// A certificate or key file of `[web] tls` cannot be read.
    #[error("cannot serve the web UI over HTTPS: {0}; check tls in the [web] section")]
    TlsFile(imi_certs::FileError),
    /// A certificate or key file of `[web] tls` holds nothing usable.
    #[error(
        "cannot serve the web UI over HTTPS: {}: {problem}; check tls in the [web] section",
        path.display()
    )]
    TlsContent {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: TlsError,
    },
    /// The key of `[web] tls` is not the certificate's.
    #[error(
        "cannot serve the web UI over HTTPS: the key {} does not belong to the certificate {}; give the files `imi-node certs issue-web` wrote together",
        key.display(),
        certificate.display()
    )]
    TlsKeyMismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate of `[web] tls` is not valid now.
    #[error(
        "cannot serve the web UI over HTTPS: the certificate {} is valid from {} until {}, not now; issue a new one with `imi-node certs issue-web`",
        path.display(),
        imi_certs::utc(*not_before),
        imi_certs::utc(*not_after)
    )]
    TlsNotValidNow {
        /// The certificate file.
        path: PathBuf,
        /// Start of its validity.
        not_before: SystemTime,
        /// End of its validity.
        not_after: SystemTime,
    },
}

/// A web UI being served; stop it with [`UiServer::stop`].
#[derive(Debug)]
pub struct UiServer {
    address: SocketAddr,
    https: bool,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How to serve the UI of a node.
#[derive(Debug, Clone)]
pub struct UiSetup {
    /// Where to listen (port 0: any free port); over HTTPS when
    /// `settings.tls` holds a certificate.
    pub listen: SocketAddr,
    /// What the pages show about the node.
    pub options: UiOptions,
    /// Sessions, origin and throttling.
    pub settings: WebSettings,
}

impl UiSetup {
    /// The setup a node's `[web]` section describes, with its certificate
    /// and key read and checked.
    pub fn from_config(
        web: &WebConfig,
        country: imi_protocol::Country,
    ) -> Result<UiSetup, UiStartError> {
        let tls = web.tls.as_ref().map(load_tls).transpose()?;
        Ok(UiSetup {
            listen: web.listen,
            options: UiOptions {
                training: web.training,
                default_language: web.default_language.unwrap_or_else(|| {
                    country
                        .official_languages()
                        .first()
                        .copied()
                        .unwrap_or(Language::En)
                }),
            },
            settings: WebSettings {
                tls,
                public_origin: web.public_origin.clone(),
                idle_timeout: Duration::from_secs(web.idle_minutes.max(1) * 60),
                max_attachment_bytes: web.max_attachment_kib.saturating_mul(1024),
                api_limits: imi_web::ApiLimits {
                    per_second: web.api_requests_per_second,
                    burst: web.api_burst,
                },
                ..WebSettings::default()
            },
        })
    }
}

/// Reads the certificate chain and key of `[web] tls`, refusing files that
/// cannot serve HTTPS now with an error naming the file.
fn load_tls(files: &WebTlsConfig) -> Result<TlsIdentity, UiStartError> {
    let chain = imi_certs::read_public_pem(&files.certificate).map_err(UiStartError::TlsFile)?;
    let key = imi_certs::read_private_key_pem(&files.key).map_err(UiStartError::TlsFile)?;
    let identity = TlsIdentity::from_pem(&chain, &key).map_err(|problem| match problem {
        TlsError::KeyMismatch => UiStartError::TlsKeyMismatch {
            certificate: files.certificate.clone(),
            key: files.key.clone(),
        },
        TlsError::Key { .. } => UiStartError::TlsContent {
            path: files.key.clone(),
            problem,
        },
        TlsError::Certificate { .. } => UiStartError::TlsContent {
            path: files.certificate.clone(),
            problem,
        },
    })?;
    let first = identity.certificate_chain()[0].to_vec();
    let cert = imi_certs::Certificate::from_der(first).map_err(|e| UiStartError::TlsContent {
        path: files.certificate.clone(),
        problem: TlsError::Certificate {
            reason: e.to_string(),
        },
    })?;
    let now = SystemTime::now();
    if now < cert.not_before() || cert.not_after() < now {
        return Err(UiStartError::TlsNotValidNow {
            path: files.certificate.clone(),
            not_before: cert.not_before(),
            not_after: cert.not_after(),
        });
    }
    if cert.not_after() < now + EXPIRY_WARNING {
        warn!(
            certificate = %files.certificate.display(),
            expires = %imi_certs::utc(cert.not_after()),
            "the web UI's certificate expires soon: issue a new one with `imi-node certs issue-web`"
        );
    }
    Ok(identity)
}

impl UiServer {
    /// Serves the UI of `node` as `setup` says.
    pub async fn start(
        node: &crate::node::Node<crate::cases::CaseApp>,
        setup: UiSetup,
    ) -> Result<UiServer, UiStartError> {
        let ui = NodeUi::new(node, setup.options).await?;
        // Refuse bad settings before binding.
        let _checked = imi_web::router(Arc::new(ui.clone()), &setup.settings)?;
        let listener = tokio::net::TcpListener::bind(setup.listen)
            .await
            .map_err(|source| UiStartError::Bind {
                address: setup.listen,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| UiStartError::Bind {
            address: setup.listen,
            source,
        })?;
        let https = setup.settings.tls.is_some();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(imi_web::serve(
            listener,
            Arc::new(ui),
            setup.settings,
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(UiServer {
            address,
            https,
            stop,
            task,
        })
    }

    /// The address the UI is served on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address to open in a browser (with the certificate's host name
    /// in place of the IP address, over HTTPS).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/", self.address)
    }

    /// Whether the UI is served over HTTPS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Stops serving; open connections finish their request.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(error = %err, "web UI stopped with an error"),
            Err(err) => warn!(error = %err, "web UI task failed"),
        }
    }
}
