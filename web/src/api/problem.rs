//! The API's one error, rendered as `application/problem+json` (RFC 9457).
//!
//! Every refusal of the API is a [`Problem`]: a stable `type` per kind of
//! error (described on the API's documentation page, where the type's
//! reference points), a title, the HTTP status, a detail a person can act
//! on and, for input, the field that was wrong. The node's errors map here
//! from the same [`NodeError`] the web UI renders as pages.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::{info, warn};
use utoipa::ToSchema;

use crate::interface::NodeError;

/// A refusal, as every error of the API is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/api/docs#problem-invalid",
    "title": "A field is not valid",
    "status": 422,
    "detail": "reply_by: give a date from today on, as YYYY-MM-DD",
    "field": "reply_by"
}))]
pub struct Problem {
    /// The kind of error, stable: a reference to its description on the
    /// API's documentation page.
    #[serde(rename = "type")]
    pub kind: String,
    /// The kind of error in a few words.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, and what to do.
    pub detail: String,
    /// The field of the request that was wrong (`reply_by`, `body`,
    /// `If-Match`), when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Why the API refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// No usable bearer token.
    Unauthorized(String),
    /// The token's user may not do this.
    Forbidden(String),
    /// No such thing, or not one the user's authority takes part in.
    NotFound(String),
    /// A field that cannot be used.
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The node refused the step in the case as it is now.
    Refused(String),
    /// `If-Match` names another version of the case than the current one.
    PreconditionFailed {
        /// The case's current version (its `ETag`).
        current: String,
    },
    /// A request with the same `Idempotency-Key` is still being handled.
    KeyInProgress,
    /// The `Idempotency-Key` was used for a different request.
    KeyReused,
    /// Too many requests; retry after this many seconds.
    RateLimited(u64),
    /// The body is larger than this address takes.
    TooLarge(usize),
    /// The body is not JSON.
    UnsupportedMediaType,
    /// The address does not take this method.
    MethodNotAllowed,
    /// No such address.
    NoRoute,
    /// The node could not answer.
    Unavailable(String),
}

impl ApiError {
    /// A field that cannot be used.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Stable kind, HTTP status and title.
    pub(crate) fn kind(&self) -> (&'static str, StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (
                "unauthorized",
                StatusCode::UNAUTHORIZED,
                "A valid bearer token is needed",
            ),
            ApiError::Forbidden(_) => (
                "forbidden",
                StatusCode::FORBIDDEN,
                "The token's user may not do this",
            ),
            ApiError::NotFound(_) => ("not-found", StatusCode::NOT_FOUND, "Not found"),
            ApiError::NoRoute => (
                "no-such-address",
                StatusCode::NOT_FOUND,
                "No such address in the API",
            ),
            ApiError::Invalid { .. } => (
                "invalid",
                StatusCode::UNPROCESSABLE_ENTITY,
                "A field is not valid",
            ),
            ApiError::Refused(_) => (
                "step-refused",
                StatusCode::CONFLICT,
                "The case does not allow this now",
            ),
            ApiError::PreconditionFailed { .. } => (
                "precondition-failed",
                StatusCode::PRECONDITION_FAILED,
                "The case changed since the version named in If-Match",
            ),
            ApiError::KeyInProgress => (
                "idempotency-key-in-progress",
                StatusCode::CONFLICT,
                "A request with this Idempotency-Key is still being handled",
            ),
            ApiError::KeyReused => (
                "idempotency-key-reused",
                StatusCode::UNPROCESSABLE_ENTITY,
                "This Idempotency-Key was used for a different request",
            ),
            ApiError::RateLimited(_) => (
                "rate-limited",
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
            ),
            ApiError::TooLarge(_) => (
                "too-large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is too large",
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The request body must be JSON",
            ),
            ApiError::MethodNotAllowed => (
                "method-not-allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "This address does not take this method",
            ),
            ApiError::Unavailable(_) => (
                "unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The node could not answer",
            ),
        }
    }

    /// The problem document.
    pub(crate) fn problem(&self) -> Problem {
        let (kind, status, title) = self.kind();
        let (detail, field) = match self {
            ApiError::Unauthorized(detail)
            | ApiError::Forbidden(detail)
            | ApiError::NotFound(detail)
            | ApiError::Refused(detail) => (detail.clone(), None),
            ApiError::Invalid { field, reason } => {
                (format!("{field}: {reason}"), Some(field.clone()))
            }
            ApiError::PreconditionFailed { current } => (
                format!("read the case again (its version is now {current}) and decide anew"),
                Some("If-Match".to_owned()),
            ),
            ApiError::KeyInProgress => (
                "wait for the first request to finish, then retry with the same key".to_owned(),
                Some("Idempotency-Key".to_owned()),
            ),
            ApiError::KeyReused => (
                "a retry sends the very same method, address and body; a new request takes a new key"
                    .to_owned(),
                Some("Idempotency-Key".to_owned()),
            ),
            ApiError::RateLimited(seconds) => (format!("retry in {seconds} s"), None),
            ApiError::TooLarge(limit) => (
                format!("this address takes at most {limit} bytes"),
                Some("body".to_owned()),
            ),
            ApiError::UnsupportedMediaType => (
                "send the body with Content-Type: application/json".to_owned(),
                Some("Content-Type".to_owned()),
            ),
            ApiError::MethodNotAllowed | ApiError::NoRoute => (
                "/api/openapi.json lists every address and its methods".to_owned(),
                None,
            ),
            ApiError::Unavailable(_) => (
                "nothing was changed by this request; try again shortly".to_owned(),
                None,
            ),
        };
        Problem {
            kind: format!("/api/docs#problem-{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            field,
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(err: NodeError) -> Self {
        match err {
            NodeError::WrongCredentials => {
                ApiError::Unauthorized("the token is unknown, revoked or expired".into())
            }
            NodeError::Deactivated => {
                ApiError::Unauthorized("the token's user is deactivated".into())
            }
            NodeError::AuthorityNotActive => {
                ApiError::Unauthorized("the token's user's authority is not active".into())
            }
            NodeError::NotFound(what) => ApiError::NotFound(format!("not found: {what}")),
            NodeError::NotAllowed(reason) => ApiError::Forbidden(reason),
            NodeError::WeakPassword(reason) => ApiError::invalid("new", reason),
            NodeError::Invalid(reason) => ApiError::Refused(reason),
            NodeError::Unavailable(reason) => ApiError::Unavailable(reason),
            NodeError::UserRefused { reason, .. } => ApiError::Refused(reason),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
        match &self {
            ApiError::Unavailable(reason) => warn!(reason = %reason, "API request not served"),
            _ => info!(problem = %problem.kind, detail = %problem.detail, "API request refused"),
        }
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            serde_json::to_vec(&problem).unwrap_or_default(),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"imi\""),
                );
            }
            ApiError::RateLimited(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            ApiError::PreconditionFailed { current } => {
                if let Ok(value) = HeaderValue::from_str(&current) {
                    headers.insert(header::ETAG, value);
                }
            }
            _ => {}
        }
        response
    }
}

/// Every kind of problem, for the documentation page: kind, status, title.
pub(crate) fn kinds() -> Vec<(&'static str, u16, &'static str)> {
    [
        ApiError::Unauthorized(String::new()),
        ApiError::Forbidden(String::new()),
        ApiError::NotFound(String::new()),
        ApiError::NoRoute,
        ApiError::invalid("", ""),
        ApiError::Refused(String::new()),
        ApiError::PreconditionFailed {
            current: String::new(),
        },
        ApiError::KeyInProgress,
        ApiError::KeyReused,
        ApiError::RateLimited(0),
        ApiError::TooLarge(0),
        ApiError::UnsupportedMediaType,
        ApiError::MethodNotAllowed,
        ApiError::Unavailable(String::new()),
    ]
    .iter()
    .map(|e| {
        let (kind, status, title) = e.kind();
        (kind, status.as_u16(), title)
    })
    .collect()
}
