//! The one error of the web layer, mapped to HTTP in one place.
//!
//! Handlers return `Result<_, WebError>`. Turning a `WebError` into a
//! response only records it (status and the error in the response's
//! extensions); the page middleware ([`crate::context`]), which knows the
//! reader's language, renders it once: as an HTML page that says what to do
//! next, or as `application/problem+json` under `/api/`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::i18n::Tr;
use crate::interface::NodeError;

/// Something a page could not do, in words the reader can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebError {
    /// No such page or entry.
    #[error("not found")]
    NotFound,
    /// The page needs a signed-in user; `next` is where to return.
    #[error("sign-in required")]
    SignInRequired {
        /// The path to return to after signing in.
        next: String,
    },
    /// The user's roles do not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A state-changing request from another site (CSRF protection).
    #[error("cross-site request refused")]
    CrossSite,
    /// Too many failed sign-ins.
    #[error("too many attempts; retry in {minutes} minutes")]
    Throttled {
        /// Minutes to wait.
        minutes: u64,
    },
    /// Input that cannot be used, with the reason.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node could not answer.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// The message ids the error pages use (checked by the completeness test).
#[cfg(test)]
pub(crate) const MESSAGE_IDS: &[&str] = &[
    "error-not-found-title",
    "error-not-found-body",
    "error-not-found-next",
    "error-sign-in-title",
    "error-sign-in-body",
    "error-forbidden-title",
    "error-forbidden-body",
    "error-forbidden-next",
    "error-cross-site-title",
    "error-cross-site-body",
    "error-cross-site-next",
    "error-throttled-title",
    "error-throttled-body",
    "error-bad-request-title",
    "error-bad-request-body",
    "error-unavailable-title",
    "error-unavailable-body",
    "error-unavailable-next",
];

impl From<NodeError> for WebError {
    fn from(err: NodeError) -> Self {
        match err {
            NodeError::NotFound(_) => WebError::NotFound,
            NodeError::NotAllowed(reason) => WebError::Forbidden(reason),
            NodeError::WrongCredentials
            | NodeError::Deactivated
            | NodeError::AuthorityNotActive => WebError::SignInRequired { next: "/".into() },
            NodeError::WeakPassword(reason) | NodeError::Invalid(reason) => {
                WebError::BadRequest(reason)
            }
            NodeError::Unavailable(reason) => WebError::Unavailable(reason),
            NodeError::UserRefused { reason, .. } => WebError::BadRequest(reason),
        }
    }
}

/// An error as the reader sees it: title, explanation, what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Explained {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) next: Option<String>,
}

impl WebError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::SignInRequired { .. } => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) | WebError::CrossSite => StatusCode::FORBIDDEN,
            WebError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The error in the reader's language.
    pub(crate) fn explain(&self, t: &Tr) -> Explained {
        let (kind, title, body, next) = match self {
            WebError::NotFound => (
                "not-found",
                t.get("error-not-found-title"),
                t.get("error-not-found-body"),
                Some(t.get("error-not-found-next")),
            ),
            WebError::SignInRequired { .. } => (
                "sign-in-required",
                t.get("error-sign-in-title"),
                t.get("error-sign-in-body"),
                None,
            ),
            WebError::Forbidden(_) => (
                "forbidden",
                t.get("error-forbidden-title"),
                t.get("error-forbidden-body"),
                Some(t.get("error-forbidden-next")),
            ),
            WebError::CrossSite => (
                "cross-site",
                t.get("error-cross-site-title"),
                t.get("error-cross-site-body"),
                Some(t.get("error-cross-site-next")),
            ),
            WebError::Throttled { minutes } => (
                "throttled",
                t.get("error-throttled-title"),
                t.count("error-throttled-body", "minutes", *minutes as usize),
                None,
            ),
            WebError::BadRequest(reason) => (
                "bad-request",
                t.get("error-bad-request-title"),
                t.with("error-bad-request-body", "reason", reason),
                None,
            ),
            WebError::Unavailable(_) => (
                "unavailable",
                t.get("error-unavailable-title"),
                t.get("error-unavailable-body"),
                Some(t.get("error-unavailable-next")),
            ),
        };
        Explained {
            status: self.status(),
            kind,
            title,
            body,
            next,
        }
    }

    /// The error as `application/problem+json` (RFC 9457), in the reader's
    /// language.
    pub fn problem_json(&self, t: &Tr) -> Response {
        let explained = self.explain(t);
        let detail = match &explained.next {
            Some(next) => format!("{} {}", explained.body, next),
            None => explained.body.clone(),
        };
        let body = serde_json::json!({
            "type": format!("/problems/{}", explained.kind),
            "title": explained.title,
            "status": explained.status.as_u16(),
            "detail": detail,
        });
        (
            explained.status,
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl IntoResponse for WebError {
    /// Records the error for the page middleware, which renders it in the
    /// reader's language.
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

#[cfg(test)]
mod tests {
    use imi_protocol::Language;

    use super::*;
    use crate::i18n::Locales;

    #[test]
    fn node_errors_map_to_the_status_a_client_expects() {
        let cases = [
            (NodeError::NotFound("x".into()), StatusCode::NOT_FOUND),
            (NodeError::NotAllowed("x".into()), StatusCode::FORBIDDEN),
            (NodeError::Deactivated, StatusCode::UNAUTHORIZED),
            (NodeError::WeakPassword("x".into()), StatusCode::BAD_REQUEST),
            (
                NodeError::Unavailable("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(WebError::from(err.clone()).status(), status, "{err:?}");
        }
    }

    #[test]
    fn one_error_renders_as_a_page_and_as_problem_json_in_the_readers_language() {
        let locales = Locales::builtin();
        let fi = locales.tr(Language::Fi);
        let en = locales.tr(Language::En);
        let err = WebError::CrossSite;
        assert_ne!(err.explain(&fi).title, err.explain(&en).title);
        let response = err.problem_json(&fi);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[axum::http::header::CONTENT_TYPE],
            "application/problem+json"
        );
        let recorded = WebError::NotFound.into_response();
        assert_eq!(recorded.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            recorded.extensions().get::<WebError>(),
            Some(&WebError::NotFound)
        );
    }
}
