//! The JSON API (`/api/v1`): everything an official does in the web UI,
//! for national systems that already handle cases and for testers who
//! replay scenarios.
//!
//! Routes and their OpenAPI 3.1 document come from the same code
//! (utoipa's `#[utoipa::path]` on each handler, collected by
//! `utoipa_axum::routes!`), so they cannot drift apart; the document is
//! served at `/api/openapi.json` and rendered for people at `/api/docs`.
//!
//! Every request of `/api/v1` carries a user's bearer token (created in
//! *My profile* or with `imi-node token create`) and acts with that user's
//! rights, checked by the node exactly as for the web UI. Errors are
//! `application/problem+json` ([`problem`]); POSTs take an
//! `Idempotency-Key` ([`idempotency`]); case steps take `If-Match` with the
//! case's `ETag`; lists page with opaque cursors; each user has a request
//! rate, and each address a body size.
//!
//! Layout: `problem` (the one error), `extract` (bearer tokens, rate
//! limits, JSON and query input), `idempotency`, `model` (the JSON
//! shapes), and one module per area: `directory`, `cases`, `me`; `docs`
//! renders the documentation page.

mod cases;
mod directory;
mod docs;
mod extract;
mod idempotency;
mod me;
mod model;
mod problem;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use imi_protocol::Catalogue;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use extract::ApiLimits;
pub use problem::Problem;

use crate::i18n::Locales;
use crate::interface::{NodeInfo, NodeInterface};
use extract::RateLimiter;
use problem::ApiError;

/// The JSON body of a step or a new request, at most: the files of one
/// step (4 MiB at most, a third more in base64) and the rest.
pub(crate) const MAX_STEP_BODY: usize = 6 * 1024 * 1024;

/// What the API's handlers share.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) node: Arc<dyn NodeInterface>,
    pub(crate) catalogue: Arc<Catalogue>,
    pub(crate) locales: Arc<Locales>,
    pub(crate) info: NodeInfo,
    pub(crate) limiter: Arc<RateLimiter>,
    /// The bytes of the files of one step, at most.
    pub(crate) max_attachment_bytes: usize,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "imi JSON API",
        version = "1.0.0",
        description = "Everything an official does in the imi web UI, for national case \
            systems and for testers. Every request of /api/v1 carries a bearer token of \
            one user (created in My profile, or with `imi-node token create`) and acts \
            with that user's rights. Errors are application/problem+json. See docs/API.md \
            for a walk-through."
    ),
    modifiers(&BearerToken),
    components(schemas(Problem)),
    tags(
        (name = "directory", description = "Search the directory of every country; authorities, registers, helpdesks, the catalogue"),
        (name = "cases", description = "My tasks, requests and every step of them"),
        (name = "profile", description = "The token's user: profile, language, email notifications, password, API tokens")
    )
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // What every operation may answer besides its own responses: the
        // rate limit, and for a body the size limit and the media type.
        let problem = || {
            utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
        };
        let response = |description: &str| {
            utoipa::openapi::RefOr::T(
                utoipa::openapi::ResponseBuilder::new()
                    .description(description)
                    .content("application/problem+json", problem())
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("429".into())
                    .or_insert_with(|| response("Too many requests; see Retry-After"));
                if operation.request_body.is_some() {
                    responses
                        .entry("413".into())
                        .or_insert_with(|| response("The body is larger than the address takes"));
                    responses
                        .entry("415".into())
                        .or_insert_with(|| response("The body is not JSON"));
                }
            }
        }
    }
}

/// The API's routes with their OpenAPI document.
fn documented() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(directory::search))
        .routes(routes!(directory::authority))
        .routes(routes!(directory::registers))
        .routes(routes!(directory::helpdesks))
        .routes(routes!(directory::catalogue))
        .routes(routes!(directory::question_set))
        .routes(routes!(cases::tasks))
        .routes(routes!(cases::new_request))
        .routes(routes!(cases::case))
        .routes(routes!(cases::take_step))
        .routes(routes!(cases::file))
        .routes(routes!(me::profile))
        .routes(routes!(me::set_language))
        .routes(routes!(me::notifications, me::set_notifications))
        .routes(routes!(me::change_password))
        .routes(routes!(me::tokens, me::create_token))
        .routes(routes!(me::revoke_token))
        .routes(routes!(me::node_status))
        .split_for_parts()
}

/// The OpenAPI document of the API, as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().1
}

/// The API under `/api`: `/api/v1/…` with bearer tokens, the OpenAPI
/// document and its documentation page.
pub(crate) fn router(
    node: Arc<dyn NodeInterface>,
    catalogue: Arc<Catalogue>,
    locales: Arc<Locales>,
    info: NodeInfo,
    limits: ApiLimits,
    max_attachment_bytes: usize,
) -> Router {
    let state = ApiState {
        node,
        catalogue,
        locales,
        info,
        limiter: Arc::new(RateLimiter::new(limits)),
        max_attachment_bytes,
    };
    let (v1, openapi) = documented();
    let document: Arc<str> = Arc::from(openapi.to_pretty_json().unwrap_or_default());
    let page: Arc<str> = Arc::from(docs::page(&openapi, limits));
    // `Idempotency-Key` only around the API's addresses: an address it
    // does not have is refused as such (404) before any key is read.
    let v1 = v1
        .fallback(no_route)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::replay,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            extract::authenticate,
        ))
        .layer(DefaultBodyLimit::max(MAX_STEP_BODY));
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        document.to_string(),
                    )
                }
            }),
        )
        .route(
            "/api/docs",
            get(move || {
                let page = Arc::clone(&page);
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                        page.to_string(),
                    )
                }
            }),
        )
        .nest("/api/v1", v1)
        .layer(middleware::from_fn(headers))
        .with_state(state)
}

async fn no_route(State(_): State<ApiState>) -> ApiError {
    ApiError::NoRoute
}

/// Security headers of every API response, and a problem for axum's own
/// refusals (a method an address does not take).
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED
        && response.headers().get(header::CONTENT_TYPE).is_none()
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = ApiError::MethodNotAllowed.into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(crate::CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
