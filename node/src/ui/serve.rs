//! Serving the web UI next to a running node: what `imi-node run` and the
//! testnet start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imi_protocol::Language;
use imi_web::WebSettings;
use tokio::sync::oneshot;
use tracing::warn;

use super::{NodeUi, UiOptions};
use crate::config::WebConfig;

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
}

/// A web UI being served; stop it with [`UiServer::stop`].
#[derive(Debug)]
pub struct UiServer {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How to serve the UI of a node.
#[derive(Debug, Clone)]
pub struct UiSetup {
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// What the pages show about the node.
    pub options: UiOptions,
    /// Sessions, origin and throttling.
    pub settings: WebSettings,
}

impl UiSetup {
    /// The setup a node's `[web]` section describes.
    pub fn from_config(web: &WebConfig, country: imi_protocol::Country) -> UiSetup {
        UiSetup {
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
                public_origin: web.public_origin.clone(),
                idle_timeout: Duration::from_secs(web.idle_minutes.max(1) * 60),
                max_attachment_bytes: web.max_attachment_kib.saturating_mul(1024),
                ..WebSettings::default()
            },
        }
    }
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
            stop,
            task,
        })
    }

    /// The address the UI is served on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
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
