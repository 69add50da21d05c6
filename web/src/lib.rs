//! The imi web layer: the officials' web UI.
//!
//! Server-rendered pages (askama templates) that work without JavaScript,
//! with htmx (vendored) as progressive enhancement on real forms; 24 EU
//! languages with Project Fluent; sign-in, sessions kept in the node's
//! store, CSRF protection (`Sec-Fetch-Site` / `Origin`), sign-in throttling
//! and a content security policy without inline script. Served over
//! HTTPS with the node's certificate ([`TlsIdentity`], rustls), or in plain
//! HTTP on loopback behind the operator's proxy.
//!
//! `web` reaches the node only through the interface it owns,
//! [`NodeInterface`]: it never sees the node's store, links or replication.
//! The node implements the interface in an adapter and `imi-node run`
//! composes the two with [`serve`].
//!
//! Layout: `interface` (what the node must provide), `error` (the one
//! error, mapped to HTTP once), `context` (the per-request page context,
//! error rendering and security headers), `i18n`, `session`, `throttle`,
//! `tls` (HTTPS: handshakes apart from the HTTP server), and `views/` with
//! one module per area of pages.
//!
//! ```no_run
//! # async fn demo(node: std::sync::Arc<dyn imi_web::NodeInterface>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! imi_web::serve(listener, node, imi_web::WebSettings::default(), std::future::pending()).await
//! # }
//! ```

mod api;
mod context;
mod error;
mod i18n;
mod interface;
mod session;
mod throttle;
mod tls;
mod upload;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use imi_protocol::Timestamp;
use tower_http::csrf::CsrfLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tracing::{info, warn};

pub use api::{ApiLimits, Problem, openapi};
pub use context::CONTENT_SECURITY_POLICY;
pub use error::WebError;
pub use i18n::{Locales, Tr, from_accept_language, negotiate};
pub use interface::{
    ApiTokenView, AuthorityPage, AuthorityUsers, CaseView, CompetenceView, DeliveryView, EntryKind,
    HelpdeskContactView, HelpdeskView, HistoryItem, INACTIVE_DAYS, IdempotencyClaim, KeptResponse,
    ManagedUser, NewApiToken, NewRequest, NodeError, NodeInfo, NodeInterface, NodeStatusView,
    Official, PartyName, PeerStatusView, RegisterView, RequestActionKey, SearchHit, SearchPage,
    SearchQuery, StepFate, StoredSession, SubstituteGap, TaskEmailChoice, TaskFilter, TaskList,
    TaskQuery, TaskView, UserDraft, UserRefusal,
};
pub use session::NodeSessions;
pub use throttle::{Throttle, ThrottleLimits};
pub use tls::{TlsError, TlsIdentity};

/// How the UI is served.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Serve HTTPS with this certificate and key (the session cookie is
    /// then `Secure`); plain HTTP without.
    pub tls: Option<TlsIdentity>,
    /// The address officials open (`https://imi.example.fi`), when the UI
    /// sits behind a proxy that rewrites `Host`: trusted for forms, and an
    /// `https` address makes the session cookie `Secure`.
    pub public_origin: Option<String>,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// Sign-in throttling.
    pub throttle: ThrottleLimits,
    /// The bytes of the files an official may attach to one step, at most
    /// (capped at [`imi_protocol::MAX_STEP_ATTACHMENT_BYTES`], what every
    /// node accepts).
    pub max_attachment_bytes: usize,
    /// The request rate each user of the JSON API may keep up.
    pub api_limits: ApiLimits,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            tls: None,
            public_origin: None,
            idle_timeout: Duration::from_secs(30 * 60),
            throttle: ThrottleLimits::default(),
            max_attachment_bytes: 2 * 1024 * 1024,
            api_limits: ApiLimits::default(),
        }
    }
}

/// The settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The public origin is not an origin.
    #[error(
        "the public origin {origin:?} is not usable ({reason}); write it like https://imi.example.fi"
    )]
    Origin {
        /// As configured.
        origin: String,
        /// Why not.
        reason: String,
    },
}

/// The UI as an axum router, over `node`.
pub fn router(
    node: Arc<dyn NodeInterface>,
    settings: &WebSettings,
) -> Result<Router, SettingsError> {
    let secure = settings.tls.is_some()
        || settings
            .public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"));
    let state = context::AppState {
        info: node.info(),
        catalogue: node.catalogue(),
        locales: Locales::builtin(),
        throttle: Arc::new(Throttle::new(settings.throttle)),
        node: Arc::clone(&node),
        secure,
        max_attachment_bytes: settings
            .max_attachment_bytes
            .min(imi_protocol::MAX_STEP_ATTACHMENT_BYTES),
    };
    let mut csrf = CsrfLayer::new();
    if let Some(origin) = &settings.public_origin {
        csrf = csrf
            .add_trusted_origin(origin.trim_end_matches('/'))
            .map_err(|e| SettingsError::Origin {
                origin: origin.clone(),
                reason: e.to_string(),
            })?;
    }
    let idle = tower_sessions::cookie::time::Duration::seconds(
        i64::try_from(settings.idle_timeout.as_secs())
            .unwrap_or(i64::MAX)
            .max(60),
    );
    let sessions = SessionManagerLayer::new(NodeSessions::new(node))
        .with_name("imi-session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(idle));
    let api = api::router(
        Arc::clone(&state.node),
        Arc::clone(&state.catalogue),
        Arc::clone(&state.locales),
        state.info.clone(),
        settings.api_limits,
        state.max_attachment_bytes,
    );
    let pages = views::routes()
        .layer(csrf)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::pages,
        ))
        .layer(sessions)
        .with_state(state);
    Ok(api.merge(pages))
}

/// Serves the UI on `listener` until `shutdown` completes, over HTTPS when
/// the settings hold a [`TlsIdentity`]; expired sessions are removed every
/// ten minutes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Arc<dyn NodeInterface>,
    settings: WebSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&node), &settings)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let address = listener.local_addr()?;
    let purge = tokio::spawn(purge_sessions(node));
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match &settings.tls {
        None => {
            info!(address = %address, "web UI listening");
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(identity) => {
            info!(address = %address, "web UI listening over https");
            // The tap does nothing: axum gives handlers the client's
            // address (`ConnectInfo<SocketAddr>`) for a tapped listener.
            let listener = tls::TlsListener::new(listener, address, identity).tap_io(|_| {});
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    purge.abort();
    served
}

async fn purge_sessions(node: Arc<dyn NodeInterface>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        match node.purge_sessions(now).await {
            Ok(0) => {}
            Ok(count) => info!(count, "expired web sessions removed"),
            Err(err) => warn!(error = %err, "expired web sessions not removed"),
        }
    }
}
