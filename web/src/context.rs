//! What every page needs, worked out once per request: the session's user
//! (re-read from the node, so a deactivated account is out at once), the
//! reader's language, and, on the way out, the one rendering of errors and
//! the security headers.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use imi_protocol::Catalogue;
use tower_http::csrf::ProtectionError;
use tower_sessions::Session;
use tracing::{info, warn};

use crate::error::WebError;
use crate::i18n::{Locales, Tr, negotiate};
use crate::interface::{NodeError, NodeInfo, NodeInterface, Official};
use crate::session;
use crate::throttle::Throttle;

/// The policy of every page: scripts, styles and forms only from the UI
/// itself, no inline script, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The state the pages share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) node: Arc<dyn NodeInterface>,
    pub(crate) locales: Arc<Locales>,
    pub(crate) throttle: Arc<Throttle>,
    pub(crate) info: NodeInfo,
    pub(crate) catalogue: Arc<Catalogue>,
    pub(crate) secure: bool,
    /// The bytes of the files of one step, at most.
    pub(crate) max_attachment_bytes: usize,
}

/// The request's page context.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// Messages in the reader's language.
    pub(crate) t: Tr,
    /// The signed-in user, as their account is now.
    pub(crate) official: Option<Official>,
    /// The session.
    pub(crate) session: Session,
    /// The path and query of the request.
    pub(crate) path: String,
    /// Whether htmx asked for a fragment.
    pub(crate) htmx: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| WebError::Unavailable("the page context is missing".into()))
    }
}

/// The signed-in user; pages that take it need a sign-in.
pub(crate) struct SignedIn(pub(crate) Official);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = Ctx::from_request_parts(parts, state).await?;
        ctx.official
            .map(SignedIn)
            .ok_or(WebError::SignInRequired { next: ctx.path })
    }
}

/// The page middleware: context in, errors rendered and headers set out.
pub(crate) async fn pages(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let api = request.uri().path().starts_with("/api/");
    let accept = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let htmx = request.headers().contains_key("hx-request");
    let explicit = session::language(&session).await;
    let mut official = None;
    let mut failure = None;
    if let Some(user) = session::user(&session).await {
        match state.node.official(user).await {
            Ok(found) => official = Some(found),
            Err(NodeError::Unavailable(reason)) => {
                failure = Some(WebError::Unavailable(reason));
            }
            Err(err) => {
                info!(user = %user, error = %err, "session ended: the account can no longer sign in");
                session::sign_out(&session).await;
            }
        }
    }
    let language = negotiate(
        explicit,
        official.as_ref().map(|o| o.language),
        accept.as_deref(),
        state.info.default_language,
    );
    let ctx = Ctx {
        t: state.locales.tr(language),
        official,
        session,
        path: path.clone(),
        htmx,
    };
    let mut response = match failure {
        Some(err) => err.into_response(),
        None => {
            request.extensions_mut().insert(ctx.clone());
            next.run(request).await
        }
    };
    if let Some(err) = response.extensions_mut().remove::<WebError>() {
        response = render_error(&state, &ctx, err, api);
    } else if let Some(refused) = response.extensions().get::<ProtectionError>() {
        warn!(path = %path, reason = ?refused.kind(), "cross-site request refused");
        response = render_error(&state, &ctx, WebError::CrossSite, api);
    }
    secure_headers(&mut response, &ctx, state.secure);
    response
}

fn render_error(state: &AppState, ctx: &Ctx, err: WebError, api: bool) -> Response {
    if api {
        return err.problem_json(&ctx.t);
    }
    match &err {
        WebError::SignInRequired { next } => {
            let next = crate::views::local_path(next);
            return Redirect::to(&format!("/sign-in?next={}", crate::views::encode(&next)))
                .into_response();
        }
        WebError::Unavailable(reason) => {
            warn!(path = %ctx.path, reason = %reason, "page not served")
        }
        WebError::BadRequest(reason) => info!(path = %ctx.path, reason = %reason, "bad request"),
        _ => {}
    }
    crate::views::error_page(state, ctx, &err)
}

fn secure_headers(response: &mut Response, ctx: &Ctx, secure: bool) {
    let headers = response.headers_mut();
    let language = HeaderValue::from_static(ctx.t.language().tag());
    headers.insert(header::CONTENT_LANGUAGE, language);
    headers.append(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}
