//! The pages, one module per area, and the router that merges them.
//!
//! Each handler takes typed extractors (the page context [`Ctx`], the
//! signed-in user [`SignedIn`]) and returns a page or a [`WebError`]; htmx
//! requests get the fragment the page swaps, from the same handler.

mod cases;
mod directory;
mod language;
mod profile;
pub(crate) mod questions;
mod requests;
mod search;
mod sign_in;
mod status;
mod tasks;
mod users;

use askama::Template;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use imi_protocol::{Country, Language};

use crate::context::{AppState, Ctx};
use crate::error::{Explained, WebError};

/// Every template's source, for the test that every message they use
/// exists.
#[cfg(test)]
pub(crate) const TEMPLATE_SOURCES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "errors_summary.html",
        include_str!("../../templates/errors_summary.html"),
    ),
    ("sign_in.html", include_str!("../../templates/sign_in.html")),
    ("search.html", include_str!("../../templates/search.html")),
    (
        "search_results.html",
        include_str!("../../templates/search_results.html"),
    ),
    (
        "authority.html",
        include_str!("../../templates/authority.html"),
    ),
    (
        "registers.html",
        include_str!("../../templates/registers.html"),
    ),
    (
        "helpdesks.html",
        include_str!("../../templates/helpdesks.html"),
    ),
    ("profile.html", include_str!("../../templates/profile.html")),
    ("tasks.html", include_str!("../../templates/tasks.html")),
    (
        "request_new.html",
        include_str!("../../templates/request_new.html"),
    ),
    (
        "request_check.html",
        include_str!("../../templates/request_check.html"),
    ),
    (
        "question_field.html",
        include_str!("../../templates/question_field.html"),
    ),
    ("case.html", include_str!("../../templates/case.html")),
    ("users.html", include_str!("../../templates/users.html")),
    (
        "user_new.html",
        include_str!("../../templates/user_new.html"),
    ),
    ("user.html", include_str!("../../templates/user.html")),
    (
        "roles_fieldset.html",
        include_str!("../../templates/roles_fieldset.html"),
    ),
    ("users.rs", include_str!("users.rs")),
    ("status.html", include_str!("../../templates/status.html")),
    ("status.rs", include_str!("status.rs")),
    ("tasks.rs", include_str!("tasks.rs")),
    ("requests.rs", include_str!("requests.rs")),
    ("questions.rs", include_str!("questions.rs")),
    ("cases.rs", include_str!("cases.rs")),
];

/// The routes of every page area, and the assets.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/assets/{file}", get(asset))
        .merge(sign_in::routes())
        .merge(language::routes())
        .merge(search::routes())
        .merge(directory::routes())
        .merge(profile::routes())
        .merge(tasks::routes())
        .merge(requests::routes())
        .merge(cases::routes())
        .merge(status::routes())
        .merge(users::routes())
        .fallback(not_found)
}

async fn home(ctx: Ctx) -> Redirect {
    if ctx.official.is_some() {
        Redirect::to("/tasks")
    } else {
        Redirect::to("/sign-in")
    }
}

async fn not_found() -> WebError {
    WebError::NotFound
}

/// The stylesheet, htmx and the small script that keeps focus after swaps,
/// compiled into the binary.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "style.css" => (
            include_bytes!("../../assets/style.css"),
            "text/css; charset=utf-8",
        ),
        "htmx.min.js" => (
            include_bytes!("../../assets/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "app.js" => (
            include_bytes!("../../assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return WebError::NotFound.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// What the layout shows on every page.
pub(crate) struct Chrome {
    /// Messages in the reader's language.
    pub(crate) t: crate::i18n::Tr,
    /// `<html lang>`.
    pub(crate) lang: &'static str,
    /// The page title.
    pub(crate) title: String,
    /// The current menu entry.
    pub(crate) nav: &'static str,
    /// The signed-in user's name.
    pub(crate) user_name: Option<String>,
    /// The signed-in user administers their authority's users (the Users
    /// entry of the menu).
    pub(crate) administrator: bool,
    /// The training banner.
    pub(crate) training: bool,
    /// The serving node.
    pub(crate) node: String,
    /// This page, for the language switcher to return to.
    pub(crate) here: String,
    /// The switcher's choices: tag, name in the language, chosen.
    pub(crate) languages: Vec<(&'static str, &'static str, bool)>,
    /// Where the back link leads.
    pub(crate) back: Option<String>,
    /// A confirmation to show.
    pub(crate) notice: Option<String>,
    /// The user is a national coordinator (the node's status is theirs).
    pub(crate) coordinator: bool,
}

impl Chrome {
    pub(crate) fn new(state: &AppState, ctx: &Ctx, nav: &'static str, title: String) -> Chrome {
        let language = ctx.t.language();
        Chrome {
            t: ctx.t.clone(),
            lang: language.tag(),
            title,
            nav,
            user_name: ctx.official.as_ref().map(|o| o.name.clone()),
            administrator: ctx.official.as_ref().is_some_and(users::administers),
            training: state.info.training,
            node: state.info.address.clone(),
            here: local_path(&ctx.path),
            languages: Language::EU
                .iter()
                .map(|l| (l.tag(), l.endonym(), *l == language))
                .collect(),
            back: None,
            notice: None,
            coordinator: ctx.official.as_ref().is_some_and(|o| {
                o.access
                    .values()
                    .any(|roles| roles.contains(&imi_protocol::Role::NationalCoordinator))
            }),
        }
    }

    pub(crate) fn back(mut self, href: impl Into<String>) -> Chrome {
        self.back = Some(href.into());
        self
    }

    pub(crate) fn notice(mut self, notice: Option<String>) -> Chrome {
        self.notice = notice;
        self
    }
}

/// A field that failed, for the error summary and the field itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The field's id.
    pub(crate) field: std::borrow::Cow<'static, str>,
    /// What to do, in the reader's language.
    pub(crate) message: String,
}

impl FieldError {
    /// The error of the field with id `field`.
    pub(crate) fn named(field: impl Into<std::borrow::Cow<'static, str>>, message: String) -> Self {
        FieldError {
            field: field.into(),
            message,
        }
    }
}

/// The message for `field` among `errors`.
pub(crate) fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

/// Renders a template, or the unavailable page if it cannot be.
pub(crate) fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            WebError::Unavailable(format!("a page could not be rendered: {err}")).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    e: Explained,
}

/// The page of an error, in the reader's language.
pub(crate) fn error_page(state: &AppState, ctx: &Ctx, err: &WebError) -> Response {
    let e = err.explain(&ctx.t);
    let status = e.status;
    let c = Chrome::new(state, ctx, "", e.title.clone());
    match (ErrorPage { c, e }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(render) => {
            tracing::error!(error = %render, "error page not rendered");
            (status, err.to_string()).into_response()
        }
    }
}

/// `path` if it is a path of this site, else `/` (no open redirects).
pub(crate) fn local_path(path: &str) -> String {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control());
    if local { path.to_owned() } else { "/".into() }
}

/// Percent-encodes `text` for a query string.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The message naming a task.
pub(crate) fn task_message(kind: imi_protocol::TaskKind) -> &'static str {
    use imi_protocol::TaskKind as K;
    match kind {
        K::CompleteDraft => "task-complete-draft",
        K::AcceptRequest => "task-accept-request",
        K::AnswerRequest => "task-answer-request",
        K::ReviewDeadline => "task-review-deadline",
        K::ProvideInformation => "task-provide-information",
        K::ReviewAnswer => "task-review-answer",
        K::HandleDeclined => "task-handle-declined",
        K::ValidateAlert => "task-validate-alert",
        K::CorrectAlert => "task-correct-alert",
        K::AcknowledgeAlert => "task-acknowledge-alert",
        K::AcknowledgeNotification => "task-acknowledge-notification",
    }
}

/// The statuses a case can be in, as the node names them.
#[cfg(test)]
const STATUSES: &[&str] = &[
    "draft",
    "sent",
    "accepted",
    "partially-answered",
    "answered",
    "declined",
    "closed",
    "withdrawn",
    "discarded",
    "awaiting-validation",
    "broadcast",
];

/// The request actions, as the node names them.
pub(crate) const ACTIONS: &[&str] = &[
    "modify-draft",
    "discard-draft",
    "send",
    "withdraw",
    "accept",
    "decline",
    "forward",
    "propose-deadline",
    "accept-deadline",
    "refuse-deadline",
    "request-information",
    "provide-information",
    "answer-part",
    "answer",
    "close",
    "reopen",
    "allocate",
];

/// The message naming a case's status.
pub(crate) fn status_message(status: &str) -> String {
    format!("status-{status}")
}

/// The messages pages name by a key they are given, for the test that
/// every message exists.
#[cfg(test)]
pub(crate) fn dynamic_message_ids() -> Vec<String> {
    use imi_protocol::TaskKind as K;
    let mut ids: Vec<String> = STATUSES.iter().map(|s| status_message(s)).collect();
    for action in ACTIONS {
        ids.push(format!("history-{action}"));
        if *action != "modify-draft" {
            ids.push(format!("action-{action}"));
        }
    }
    for kind in [
        K::CompleteDraft,
        K::AcceptRequest,
        K::AnswerRequest,
        K::ReviewDeadline,
        K::ProvideInformation,
        K::ReviewAnswer,
        K::HandleDeclined,
        K::ValidateAlert,
        K::CorrectAlert,
        K::AcknowledgeAlert,
        K::AcknowledgeNotification,
    ] {
        ids.push(task_message(kind).to_owned());
    }
    ids.extend(profile::message_ids().into_iter().map(str::to_owned));
    ids.extend(users::message_ids().into_iter().map(str::to_owned));
    ids
}

/// Today's date (UTC).
pub(crate) fn today() -> imi_protocol::Date {
    imi_protocol::Timestamp::from_system_time(std::time::SystemTime::now()).date()
}

/// A moment as officials read it: `2026-12-03 14:05 UTC`.
pub(crate) fn when(at: imi_protocol::Timestamp) -> String {
    let minutes = (at.as_millis() / 60_000) % (24 * 60);
    format!("{} {:02}:{:02} UTC", at.date(), minutes / 60, minutes % 60)
}

/// A choice of a `<select>`.
#[derive(Debug, Clone)]
pub(crate) struct SelectOption {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// The countries of the federation in the reader's language, sorted by
/// name, with `chosen` selected.
pub(crate) fn country_options(
    state: &AppState,
    language: Language,
    chosen: Option<Country>,
) -> Vec<SelectOption> {
    let mut options: Vec<SelectOption> = Country::MEMBERS
        .iter()
        .map(|c| SelectOption {
            value: c.code().to_owned(),
            label: state.catalogue.country_name(*c, language).to_owned(),
            selected: Some(*c) == chosen,
        })
        .collect();
    options.sort_by(|a, b| a.label.cmp(&b.label));
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/search?q=x"), "/search?q=x");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/a\nb"), "/");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode("/search?q=lääkäri"),
            "%2Fsearch%3Fq%3Dl%C3%A4%C3%A4k%C3%A4ri"
        );
    }
}
