//! A request's page: what was asked and answered, the history of every
//! step with who took it, when, and where each message stands, and the
//! steps the reader may take now (`POST /cases/{id}/act`).

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use imi_protocol::{
    AuthorityId, CaseId, CaseState, Content, Country, Date, FreeText, Party, Rating, RequestAction,
    StepId,
};
use serde::Deserialize;

use super::questions::{self, Field};
use super::{ACTIONS, Chrome, FieldError, render, status_message};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;
use crate::interface::{CaseView, DeliveryView, NodeError, StepFate};
use crate::upload::{self, Submitted};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases/{id}", get(page))
        .route(
            "/cases/{id}/act",
            post(act).layer(DefaultBodyLimit::max(upload::MAX_FORM_BYTES)),
        )
        .route("/cases/{id}/files/{step}/{index}", get(file))
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

/// One step of the history as shown.
pub(crate) struct Step {
    when: String,
    what: String,
    date: Option<String>,
    by: String,
    by_lang: &'static str,
    message: Option<(String, &'static str, String)>,
    fate: Option<String>,
    overtaken: bool,
    node: String,
    deliveries: Vec<(String, &'static str)>,
    /// Download link, name, size, SHA-256 in hex.
    files: Vec<(String, String, String, String)>,
}

/// A detail given or a question asked: label, answer, personal data.
pub(crate) struct Line {
    label: String,
    value: Option<String>,
    personal: bool,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CaseTemplate {
    c: Chrome,
    id: String,
    status: String,
    from: (String, &'static str),
    to: (String, &'static str),
    area: String,
    set: Option<String>,
    reply_by: Option<String>,
    proposal: Option<String>,
    information_requested: bool,
    rating: Option<String>,
    provided: Vec<Line>,
    asked: Vec<Line>,
    message: Option<(String, &'static str, String)>,
    history: Vec<Step>,
    allowed: Vec<&'static str>,
    answer_fields: Vec<Field>,
    forward_to: Vec<(String, String, &'static str)>,
    handler: Option<String>,
    handlers: Vec<(String, String)>,
    /// Nothing is carried between a step's page and its form.
    carried: Vec<upload::Carried>,
    files_hint: String,
    later: String,
    ratings: Vec<u8>,
    errors: Vec<FieldError>,
}

impl CaseTemplate {
    fn may(&self, action: &str) -> bool {
        self.allowed.contains(&action)
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.errors, field)
    }
}

fn parse_case(id: &str) -> Result<CaseId, WebError> {
    id.parse().map_err(|_| WebError::NotFound)
}

fn free_text(text: &FreeText) -> (String, &'static str, String) {
    (
        text.text.clone(),
        text.language.tag(),
        text.language.endonym().to_owned(),
    )
}

fn case_page(
    state: &AppState,
    ctx: &Ctx,
    view: CaseView,
    notice: Option<String>,
    errors: Vec<FieldError>,
) -> Response {
    let t = &ctx.t;
    let language = t.language();
    let CaseState::Request(request) = &view.state else {
        return WebError::NotFound.into_response();
    };
    let id = request.id().to_string();
    let set = view
        .request
        .question_set
        .as_deref()
        .and_then(|k| k.parse().ok())
        .and_then(|k| state.catalogue.question_set(&k));
    let label = |key: &str| {
        questions::question(set, key).map_or(key.to_owned(), |q| q.label.get(language).to_owned())
    };
    let personal = |key: &str| questions::question(set, key).is_some_and(|q| q.personal_data);
    // In the order of the question set, as the form asked them.
    let mut fields: Vec<(&String, &String)> = view.request.fields.iter().collect();
    fields.sort_by_key(|(k, _)| questions::position(set, k));
    let provided = fields
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| Line {
            label: label(k),
            value: Some(questions::shown(questions::question(set, k), v, t)),
            personal: personal(k),
        })
        .collect();
    let asked_keys: Vec<&String> = fields
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| *k)
        .collect();
    let asked = asked_keys
        .iter()
        .map(|k| Line {
            label: label(k),
            value: view
                .answers
                .get(*k)
                .map(|v| questions::shown(questions::question(set, k), v, t)),
            personal: personal(k),
        })
        .collect();
    let answer_fields = asked_keys
        .iter()
        .filter_map(|k| questions::question(set, k))
        .map(|q| {
            let value = view.answers.get(q.key.as_str()).map_or("", String::as_str);
            let mut f = questions::field(q, "a-", value, language);
            f.required = false;
            f.error = super::error_for(&errors, &f.name).map(str::to_owned);
            f
        })
        .collect();
    let history = view
        .history
        .iter()
        .map(|h| {
            let fate = match &h.fate {
                StepFate::Applied => None,
                StepFate::Pending => Some(t.get("fate-pending")),
                StepFate::Overtaken { by: Some(by), .. } => {
                    Some(t.with("fate-overtaken", "step", &t.get(&format!("history-{by}"))))
                }
                StepFate::Overtaken { by: None, .. } => Some(t.get("fate-overtaken-unknown")),
            };
            let by = match &h.user {
                Some(user) => t.with2("history-by", "name", user, "authority", &h.party.name),
                None => h.party.name.clone(),
            };
            Step {
                when: super::when(h.at),
                what: t.get(&format!("history-{}", h.action)),
                date: h
                    .date
                    .map(|d| t.with("history-date", "date", &d.to_string())),
                by,
                by_lang: h.party.language.tag(),
                message: h.content.text.as_ref().map(free_text),
                overtaken: matches!(h.fate, StepFate::Overtaken { .. }),
                fate,
                node: t.with("history-on-node", "node", &h.node),
                files: h
                    .content
                    .attachments
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        (
                            format!("/cases/{id}/files/{}/{i}", h.step),
                            a.name.clone(),
                            upload::human_size(a.bytes.len()),
                            a.digest_hex(),
                        )
                    })
                    .collect(),
                deliveries: h
                    .deliveries
                    .iter()
                    .map(|(node, d)| match d {
                        DeliveryView::Queued => (t.with("delivery-queued", "node", node), "queued"),
                        DeliveryView::Delivered => {
                            (t.with("delivery-delivered", "node", node), "delivered")
                        }
                        DeliveryView::Rejected { reason } => (
                            t.with2("delivery-rejected", "node", node, "reason", reason),
                            "rejected",
                        ),
                    })
                    .collect(),
            }
        })
        .collect();
    let area = request
        .area()
        .parse()
        .ok()
        .and_then(|k| state.catalogue.area(&k))
        .map_or(request.area().to_owned(), |a| {
            a.label.get(language).to_owned()
        });
    let later = view
        .today
        .checked_add_days(14)
        .unwrap_or(view.today)
        .to_string();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let c = Chrome::new(state, ctx, "tasks", t.with("case-title", "reference", &id))
        .back("/tasks")
        .notice(notice);
    render(
        &CaseTemplate {
            c,
            status: t.get(&status_message(view.state.status_key())),
            from: (view.requester.name.clone(), view.requester.language.tag()),
            to: (view.responder.name.clone(), view.responder.language.tag()),
            area,
            set: set.map(|s| s.label.get(language).to_owned()),
            reply_by: request.reply_by().map(|d| d.to_string()),
            proposal: request.deadline_proposal().map(|d| d.to_string()),
            information_requested: request.information_requested(),
            rating: request.rating().map(|r| {
                t.count2(
                    "case-rating",
                    "timeliness",
                    usize::from(r.timeliness),
                    "effort",
                    usize::from(r.effort),
                )
            }),
            provided,
            asked,
            message: view.request.text.as_ref().map(free_text),
            history,
            allowed: view.allowed.clone(),
            answer_fields,
            forward_to: view
                .forward_to
                .iter()
                .map(|p| {
                    (
                        format!("{}/{}", p.party.country.code(), p.party.authority),
                        p.name.clone(),
                        p.language.tag(),
                    )
                })
                .collect(),
            handler: view.handler.clone(),
            carried: vec![],
            files_hint: super::requests::files_hint(state, ctx),
            handlers: view
                .handlers
                .iter()
                .map(|(id, name)| (id.to_string(), name.clone()))
                .collect(),
            later,
            ratings: (Rating::MIN..=Rating::MAX).collect(),
            errors,
            id,
        },
        status,
    )
}

async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let case = parse_case(&id)?;
    let view = state.node.case(official.id, case).await?;
    let notice = done.done.as_deref().and_then(|d| match d {
        "send" if view.history.len() <= 1 => Some(ctx.t.with("request-sent", "reference", &id)),
        "draft" => Some(ctx.t.with("request-draft-saved", "reference", &id)),
        key if ACTIONS.contains(&key) => Some(ctx.t.with(
            "case-step-done",
            "step",
            &ctx.t.get(&format!("history-{key}")),
        )),
        _ => None,
    });
    Ok(case_page(&state, &ctx, view, notice, vec![]))
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.trim())
}

/// The step the form asks for, with what it says; or the fields to
/// correct.
fn step_of(
    pairs: &[(String, String)],
    view: &CaseView,
    state: &AppState,
    ctx: &Ctx,
) -> Result<(RequestAction, Content), Vec<FieldError>> {
    let t = &ctx.t;
    let action = value(pairs, "action");
    let message = |field: &str| {
        let text = value(pairs, field);
        (!text.is_empty()).then(|| FreeText {
            language: t.language(),
            text: text.to_owned(),
        })
    };
    let date = |field: &'static str| -> Result<Date, Vec<FieldError>> {
        value(pairs, field)
            .parse::<Date>()
            .ok()
            .filter(|d| *d >= view.today)
            .ok_or_else(|| vec![FieldError::named(field, t.get("request-bad-reply-by"))])
    };
    let plain = |action| Ok((action, Content::default()));
    match action {
        "send" => plain(RequestAction::Send {
            reply_by: date("send-reply_by")?,
        }),
        "discard-draft" => plain(RequestAction::DiscardDraft),
        "withdraw" => plain(RequestAction::Withdraw),
        "accept" => plain(RequestAction::Accept),
        "decline" => Ok((
            RequestAction::Decline,
            Content {
                text: message("decline-message"),
                ..Content::default()
            },
        )),
        "accept-deadline" => plain(RequestAction::AcceptDeadline),
        "refuse-deadline" => plain(RequestAction::RefuseDeadline),
        "propose-deadline" => plain(RequestAction::ProposeDeadline {
            reply_by: date("propose-reply_by")?,
        }),
        "reopen" => plain(RequestAction::Reopen {
            reply_by: date("reopen-reply_by")?,
        }),
        "request-information" | "provide-information" => Ok((
            if action == "request-information" {
                RequestAction::RequestInformation
            } else {
                RequestAction::ProvideInformation
            },
            Content {
                text: message("information-message"),
                ..Content::default()
            },
        )),
        "forward" => {
            let target = value(pairs, "forward-to");
            let party = target.split_once('/').and_then(|(country, id)| {
                Some(Party {
                    country: country.parse::<Country>().ok()?,
                    authority: id.parse::<AuthorityId>().ok()?,
                })
            });
            match party {
                Some(to) => Ok((
                    RequestAction::Forward { to },
                    Content {
                        text: message("forward-message"),
                        ..Content::default()
                    },
                )),
                None => Err(vec![FieldError::named(
                    "forward-to",
                    t.get("request-bad-choice"),
                )]),
            }
        }
        "allocate" => {
            let chosen = value(pairs, "allocate-handler");
            match view
                .handlers
                .iter()
                .find(|(id, _)| id.to_string() == chosen)
            {
                Some((handler, _)) => plain(RequestAction::Allocate { handler: *handler }),
                None => Err(vec![FieldError::named(
                    "allocate-handler",
                    t.get("request-bad-choice"),
                )]),
            }
        }
        "answer" | "answer-part" => {
            let set = view
                .request
                .question_set
                .as_deref()
                .and_then(|k| k.parse().ok())
                .and_then(|k| state.catalogue.question_set(&k));
            let mut fields = std::collections::BTreeMap::new();
            let mut errors = vec![];
            for (key, _) in view.request.fields.iter().filter(|(_, v)| v.is_empty()) {
                let name = format!("a-{key}");
                let given = value(pairs, &name);
                if given.is_empty() {
                    continue;
                }
                if let Some(q) = questions::question(set, key)
                    && let Some(message) = questions::check(q, given, t)
                {
                    errors.push(FieldError::named(name, message));
                    continue;
                }
                fields.insert(key.clone(), given.to_owned());
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            Ok((
                RequestAction::Answer {
                    complete: action == "answer",
                },
                Content {
                    question_set: view.request.question_set.clone(),
                    fields,
                    text: message("answer-message"),
                    ..Content::default()
                },
            ))
        }
        "close" => {
            let rating = |field: &'static str| {
                value(pairs, field)
                    .parse::<u8>()
                    .ok()
                    .filter(|r| (Rating::MIN..=Rating::MAX).contains(r))
                    .ok_or_else(|| FieldError::named(field, t.get("case-bad-rating")))
            };
            match (rating("timeliness"), rating("effort")) {
                (Ok(timeliness), Ok(effort)) => plain(RequestAction::Close {
                    rating: Rating { timeliness, effort },
                }),
                (a, b) => Err([a.err(), b.err()].into_iter().flatten().collect()),
            }
        }
        _ => Err(vec![FieldError::named("actions", t.get("case-no-actions"))]),
    }
}

/// A file of a step, as a download: never shown inline, so a file cannot
/// run as a page of the UI.
async fn file(
    State(state): State<AppState>,
    SignedIn(official): SignedIn,
    Path((id, step, index)): Path<(String, String, usize)>,
) -> Result<Response, WebError> {
    let case = parse_case(&id)?;
    let step: StepId = step.parse().map_err(|_| WebError::NotFound)?;
    let file = state
        .node
        .attachment(official.id, case, step, index)
        .await?;
    let name: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = file
        .name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let media_type = file
        .media_type
        .parse::<HeaderValue>()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{name}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, media_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
            (
                header::HeaderName::from_static("x-content-sha256"),
                HeaderValue::from_str(&file.digest_hex()).unwrap_or(HeaderValue::from_static("")),
            ),
        ],
        file.bytes,
    )
        .into_response())
}

async fn act(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Path(id): Path<String>,
    submitted: Submitted,
) -> Result<Response, WebError> {
    let case = parse_case(&id)?;
    let view = state.node.case(official.id, case).await?;
    let (action, mut content) = match step_of(&submitted.pairs, &view, &state, &ctx) {
        Ok(step) => step,
        Err(errors) => return Ok(case_page(&state, &ctx, view, None, errors)),
    };
    // The steps that may carry files, each from its own form.
    let files_field = match action {
        RequestAction::Answer { .. } => Some("answer-files"),
        RequestAction::RequestInformation | RequestAction::ProvideInformation => {
            Some("information-files")
        }
        _ => None,
    };
    if let Some(field) = files_field {
        match upload::attachments(&submitted, field, state.max_attachment_bytes, &ctx.t) {
            Ok(files) => content.attachments = files,
            Err(error) => return Ok(case_page(&state, &ctx, view, None, vec![error])),
        }
    }
    let key = action.key();
    match state.node.act(official.id, case, action, content).await {
        Ok(()) => Ok(Redirect::to(&format!("/cases/{case}?done={key}")).into_response()),
        Err(NodeError::Invalid(reason)) => {
            let view = state.node.case(official.id, case).await?;
            let errors = vec![FieldError::named(
                "actions",
                ctx.t.with("case-refused", "reason", &reason),
            )];
            Ok(case_page(&state, &ctx, view, None, errors))
        }
        Err(err) => Err(err.into()),
    }
}
