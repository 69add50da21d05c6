//! Cases through the API: My tasks, a new request, a case with its history
//! and version, every step of a request, and the files of a step.
//!
//! A case's `ETag` names its version: it changes when a step is applied,
//! taken or overtaken, not when a receipt arrives. A step sent with
//! `If-Match` naming another version is refused with 412, so a system that
//! acted on an outdated view of the case learns it instead of taking a
//! step it did not mean.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use imi_protocol::{
    Attachment, AuthorityId, CaseId, CaseState, Content, Date, FreeText, Language, Party, Rating,
    RequestAction, StepId,
};
use sha2::{Digest, Sha256};

use super::ApiState;
use super::directory::country;
use super::extract::{ApiJson, ApiQuery, Caller, next_cursor, page};
use super::model::{
    CaseOut, DeliveryOut, FileIn, FileOut, HandlerOut, NewRequestIn, PartyOut, PartyRef,
    QuestionAnswer, RatingIo, StepIn, StepOut, TaskOut, TaskPage, TaskParams, TextOut,
};
use super::problem::{ApiError, Problem};
use crate::interface::{
    CaseView, DeliveryView, NewRequest, Official, PartyName, StepFate, TaskFilter, TaskQuery,
};
use crate::views::questions::{self, PROVIDED_GROUPS};

pub(crate) fn party_out(p: &PartyName) -> PartyOut {
    PartyOut {
        country: p.party.country.code().to_owned(),
        authority: p.party.authority.to_string(),
        name: p.name.clone(),
        language: p.language.tag().to_owned(),
    }
}

fn party(field: &str, p: &PartyRef) -> Result<Party, ApiError> {
    Ok(Party {
        country: country(&format!("{field}.country"), &p.country)?,
        authority: p.authority.parse::<AuthorityId>().map_err(|_| {
            ApiError::invalid(
                format!("{field}.authority"),
                format!("{:?} is not an authority id", p.authority),
            )
        })?,
    })
}

/// A kind of case as the API writes it.
fn case_kind(kind: imi_protocol::MessageKind) -> &'static str {
    use imi_protocol::MessageKind;
    match kind {
        MessageKind::Request => "request",
        MessageKind::Alert => "alert",
        MessageKind::Notification => "notification",
        MessageKind::PublicCase => "public-case",
        MessageKind::Directory => "directory",
        MessageKind::Control => "control",
    }
}

fn case_id(id: &str) -> Result<CaseId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("no case {id:?}")))
}

/// My tasks: everything waiting for the token's user and their authority.
#[utoipa::path(
    get,
    path = "/tasks",
    tag = "cases",
    params(TaskParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is not valid", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn tasks(
    State(state): State<ApiState>,
    Caller(official): Caller,
    ApiQuery(params): ApiQuery<TaskParams>,
) -> Result<Json<TaskPage>, ApiError> {
    let (offset, limit) = page(params.cursor.as_deref(), params.limit)?;
    let filter = match params.filter.as_deref().map(str::trim) {
        None | Some("" | "all") => TaskFilter::All,
        Some("overdue") => TaskFilter::Overdue,
        Some("mine") => TaskFilter::Mine,
        Some(other) => {
            return Err(ApiError::invalid(
                "filter",
                format!("{other:?} is not all, overdue or mine"),
            ));
        }
    };
    let by_update = match params.order.as_deref().map(str::trim) {
        None | Some("" | "due") => false,
        Some("updated") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "order",
                format!("{other:?} is not due or updated"),
            ));
        }
    };
    let list = state
        .node
        .tasks(
            official.id,
            TaskQuery {
                filter,
                by_update,
                offset,
                limit,
            },
        )
        .await?;
    Ok(Json(TaskPage {
        next_cursor: next_cursor(offset, limit, list.total),
        total: list.total,
        overdue: list.overdue,
        today: list.today.to_string(),
        items: list
            .tasks
            .into_iter()
            .map(|t| TaskOut {
                href: format!("/api/v1/cases/{}", t.case),
                case: t.case.to_string(),
                case_kind: case_kind(t.case_kind).to_owned(),
                area: t.area,
                task: t.kind.as_str().to_owned(),
                personal: t.personal,
                due: t.due.map(|d| d.to_string()),
                status: t.status,
                updated_at: t.updated_at.to_string(),
                counterpart: t.counterpart.as_ref().map(party_out),
            })
            .collect(),
    }))
}

fn message(
    text: Option<&str>,
    language: Option<&str>,
    official: &Official,
) -> Result<Option<FreeText>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let language = match language.map(str::trim).filter(|l| !l.is_empty()) {
        None => official.language,
        Some(tag) => tag.parse::<Language>().map_err(|_| {
            ApiError::invalid(
                "language",
                format!("{tag:?} is not one of the 24 languages"),
            )
        })?,
    };
    Ok(Some(FreeText {
        language,
        text: text.to_owned(),
    }))
}

fn files(given: &[FileIn], limit: usize) -> Result<Vec<Attachment>, ApiError> {
    let mut files = Vec::with_capacity(given.len());
    for (i, file) in given.iter().enumerate() {
        let bytes = STANDARD.decode(file.content_base64.trim()).map_err(|_| {
            ApiError::invalid(
                format!("attachments[{i}].content_base64"),
                "not standard base64",
            )
        })?;
        files.push(Attachment::new(
            file.name.clone(),
            file.media_type.clone(),
            bytes,
        ));
    }
    let content = Content {
        attachments: files,
        ..Content::default()
    };
    content
        .check_attachments(limit)
        .map_err(|err| ApiError::invalid("attachments", err.to_string()))?;
    Ok(content.attachments)
}

fn date(field: &str, value: Option<&str>, today: Date) -> Result<Date, ApiError> {
    value
        .and_then(|v| v.trim().parse::<Date>().ok())
        .filter(|d| *d >= today)
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("give a date from {today} on, written YYYY-MM-DD"),
            )
        })
}

/// Writes a new request of the token's user's authority, and sends it if
/// asked.
#[utoipa::path(
    post,
    path = "/cases",
    tag = "cases",
    request_body = NewRequestIn,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body give the first response again")
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The request, sent or kept as a draft; Location names it", body = CaseOut),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The user may not send requests in this area", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such authority", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The node refused the request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn new_request(
    State(state): State<ApiState>,
    Caller(official): Caller,
    ApiJson(input): ApiJson<NewRequestIn>,
) -> Result<Response, ApiError> {
    let to = party("to", &input.to)?;
    let target = state.node.authority(to.country, to.authority).await?;
    let their_areas: Vec<String> = target
        .competences
        .iter()
        .map(|c| c.area.as_str().to_owned())
        .collect();
    let catalogue = &state.catalogue;
    let set = input
        .question_set
        .parse()
        .ok()
        .and_then(|k| catalogue.question_set(&k))
        .ok_or_else(|| {
            ApiError::invalid(
                "question_set",
                format!("{:?} is not a question set", input.question_set),
            )
        })?;
    let procedure = catalogue
        .procedure(&set.procedure)
        .filter(|p| p.kind == imi_protocol::ProcedureKind::InformationRequest)
        .ok_or_else(|| {
            ApiError::invalid("question_set", "this question set is not for requests")
        })?;
    let area = procedure.area.as_str().to_owned();
    if !official.areas.contains(&procedure.area) || !their_areas.contains(&area) {
        return Err(ApiError::invalid(
            "question_set",
            format!(
                "{:?} is in {area}, where your authority and {} are not both competent",
                input.question_set, target.id
            ),
        ));
    }
    let t = state.locales.tr(Language::En);
    let mut fields = BTreeMap::new();
    let mut known = std::collections::BTreeSet::new();
    for group in &set.groups {
        let given_by_requester = PROVIDED_GROUPS.contains(&group.key.as_str());
        for q in &group.questions {
            let key = q.key.as_str();
            known.insert(key);
            if given_by_requester {
                let value = input.details.get(key).map_or("", |v| v.trim());
                if value.is_empty() {
                    if q.required {
                        return Err(ApiError::invalid(
                            format!("details.{key}"),
                            "this detail is required",
                        ));
                    }
                    continue;
                }
                if let Some(why) = questions::check(q, value, &t) {
                    return Err(ApiError::invalid(format!("details.{key}"), why));
                }
                fields.insert(key.to_owned(), value.to_owned());
            } else if input.questions.iter().any(|a| a == key) {
                fields.insert(key.to_owned(), String::new());
            }
        }
    }
    if let Some(unknown) = input.details.keys().find(|k| {
        !known.contains(k.as_str())
            || !set.groups.iter().any(|g| {
                PROVIDED_GROUPS.contains(&g.key.as_str())
                    && g.questions.iter().any(|q| q.key.as_str() == k.as_str())
            })
    }) {
        return Err(ApiError::invalid(
            format!("details.{unknown}"),
            "not a detail of this question set",
        ));
    }
    if let Some(unknown) = input
        .questions
        .iter()
        .find(|k| !fields.get(k.as_str()).is_some_and(String::is_empty))
    {
        return Err(ApiError::invalid(
            "questions",
            format!("{unknown:?} is not a question of this set to ask"),
        ));
    }
    if !fields.values().any(String::is_empty) {
        return Err(ApiError::invalid("questions", "ask at least one question"));
    }
    let today = crate::views::today();
    let reply_by = match (&input.reply_by, input.send) {
        (None, false) => None,
        (reply_by, _) => Some(date("reply_by", reply_by.as_deref(), today)?),
    };
    let content = Content {
        question_set: Some(input.question_set.clone()),
        fields,
        text: message(
            input.message.as_deref(),
            input.language.as_deref(),
            &official,
        )?,
        attachments: files(&input.attachments, state.max_attachment_bytes)?,
    };
    let case = state
        .node
        .new_request(
            official.id,
            NewRequest {
                to,
                area,
                content,
                send: if input.send { reply_by } else { None },
            },
        )
        .await?;
    let view = state.node.case(official.id, case).await?;
    let mut response = case_response(&view, StatusCode::CREATED)?;
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/cases/{case}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The version of a case: its state and the steps with their fates, not
/// the delivery of its messages.
pub(crate) fn version(view: &CaseView) -> String {
    let mut hash = Sha256::new();
    hash.update(serde_json::to_vec(&view.state).unwrap_or_default());
    for item in &view.history {
        hash.update(item.step.to_string().as_bytes());
        hash.update(match item.fate {
            StepFate::Applied => b"a",
            StepFate::Overtaken { .. } => b"o",
            StepFate::Pending => b"p",
        });
    }
    hash.update(view.handler.as_deref().unwrap_or("").as_bytes());
    let digest = hash.finalize();
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

fn case_out(view: &CaseView) -> Result<CaseOut, ApiError> {
    let CaseState::Request(request) = &view.state else {
        return Err(ApiError::NotFound(
            "this case is not a request; the API reads requests".into(),
        ));
    };
    let id = request.id().to_string();
    let details = view
        .request
        .fields
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let questions = view
        .request
        .fields
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| QuestionAnswer {
            key: k.clone(),
            answer: view.answers.get(k).cloned(),
        })
        .collect();
    let text = |t: &FreeText| TextOut {
        language: t.language.tag().to_owned(),
        text: t.text.clone(),
    };
    Ok(CaseOut {
        version: version(view),
        status: view.state.status_key().to_owned(),
        area: request.area().to_owned(),
        question_set: view.request.question_set.clone(),
        requester: party_out(&view.requester),
        responder: party_out(&view.responder),
        reader_is_requester: view.reader_is_requester,
        reply_by: request.reply_by().map(|d| d.to_string()),
        deadline_proposal: request.deadline_proposal().map(|d| d.to_string()),
        information_requested: request.information_requested(),
        rating: request.rating().map(|r| RatingIo {
            timeliness: r.timeliness,
            effort: r.effort,
        }),
        handler: view.handler.clone(),
        details,
        questions,
        message: view.request.text.as_ref().map(text),
        history: view
            .history
            .iter()
            .map(|h| {
                let (fate, overtaken_by) = match &h.fate {
                    StepFate::Applied => ("applied", None),
                    StepFate::Pending => ("pending", None),
                    StepFate::Overtaken { by, reason, .. } => (
                        "overtaken",
                        Some(match by {
                            Some(by) => format!("{by}: {reason}"),
                            None => reason.clone(),
                        }),
                    ),
                };
                StepOut {
                    step: h.step.to_string(),
                    at: h.at.to_string(),
                    action: h.action.to_owned(),
                    date: h.date.map(|d| d.to_string()),
                    party: party_out(&h.party),
                    user: h.user.clone(),
                    message: h.content.text.as_ref().map(text),
                    fields: h.content.fields.clone(),
                    files: h
                        .content
                        .attachments
                        .iter()
                        .enumerate()
                        .map(|(i, a)| FileOut {
                            name: a.name.clone(),
                            media_type: a.media_type.clone(),
                            size: a.bytes.len(),
                            sha256: a.digest_hex(),
                            href: format!("/api/v1/cases/{id}/files/{}/{i}", h.step),
                        })
                        .collect(),
                    fate: fate.to_owned(),
                    overtaken_by,
                    node: h.node.clone(),
                    deliveries: h
                        .deliveries
                        .iter()
                        .map(|(node, d)| {
                            let (state, reason) = match d {
                                DeliveryView::Queued => ("queued", None),
                                DeliveryView::Delivered => ("delivered", None),
                                DeliveryView::Rejected { reason } => {
                                    ("rejected", Some(reason.clone()))
                                }
                            };
                            DeliveryOut {
                                node: node.clone(),
                                state: state.to_owned(),
                                reason,
                            }
                        })
                        .collect(),
                }
            })
            .collect(),
        allowed: view.allowed.iter().map(|a| (*a).to_owned()).collect(),
        forward_to: view.forward_to.iter().map(party_out).collect(),
        handlers: view
            .handlers
            .iter()
            .map(|(id, name)| HandlerOut {
                id: id.to_string(),
                name: name.clone(),
            })
            .collect(),
        today: view.today.to_string(),
        id,
    })
}

fn case_response(view: &CaseView, status: StatusCode) -> Result<Response, ApiError> {
    let out = case_out(view)?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", out.version))
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut response = (status, Json(out)).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    Ok(response)
}

/// A request, if the token's user's authority takes part in it.
#[utoipa::path(
    get,
    path = "/cases/{id}",
    tag = "cases",
    params(("id" = String, Path, description = "The case", example = "01JDXAMPLE0000000000000000")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The case; its ETag is its version", body = CaseOut,
            headers(("ETag" = String, description = "The case's version, for If-Match"))),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The user's authority takes no part in it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn case(
    State(state): State<ApiState>,
    Caller(official): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.node.case(official.id, case_id(&id)?).await?;
    case_response(&view, StatusCode::OK)
}

/// The step the body asks for, with what it says.
fn step_of(
    input: &StepIn,
    view: &CaseView,
    state: &ApiState,
    official: &Official,
) -> Result<(RequestAction, Content), ApiError> {
    let today = view.today;
    let text = message(
        input.message.as_deref(),
        input.language.as_deref(),
        official,
    )?;
    let said = Content {
        text,
        ..Content::default()
    };
    let action = match input.action.as_str() {
        "send" => RequestAction::Send {
            reply_by: date("reply_by", input.reply_by.as_deref(), today)?,
        },
        "discard-draft" => RequestAction::DiscardDraft,
        "withdraw" => RequestAction::Withdraw,
        "accept" => RequestAction::Accept,
        "decline" => RequestAction::Decline,
        "accept-deadline" => RequestAction::AcceptDeadline,
        "refuse-deadline" => RequestAction::RefuseDeadline,
        "propose-deadline" => RequestAction::ProposeDeadline {
            reply_by: date("reply_by", input.reply_by.as_deref(), today)?,
        },
        "reopen" => RequestAction::Reopen {
            reply_by: date("reply_by", input.reply_by.as_deref(), today)?,
        },
        "request-information" => RequestAction::RequestInformation,
        "provide-information" => RequestAction::ProvideInformation,
        "forward" => {
            let to = input
                .to
                .as_ref()
                .ok_or_else(|| ApiError::invalid("to", "name the authority to forward to"))?;
            RequestAction::Forward {
                to: party("to", to)?,
            }
        }
        "allocate" => {
            let chosen = input.handler.as_deref().unwrap_or_default();
            let handler = view
                .handlers
                .iter()
                .find(|(id, _)| id.to_string() == chosen)
                .map(|(id, _)| *id)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "handler",
                        "not one of the case's handlers (see handlers in the case)",
                    )
                })?;
            RequestAction::Allocate { handler }
        }
        "answer" | "answer-part" => RequestAction::Answer {
            complete: input.action == "answer",
        },
        "close" => {
            let rating = input
                .rating
                .as_ref()
                .ok_or_else(|| ApiError::invalid("rating", "rate timeliness and effort"))?;
            for (field, value) in [
                ("rating.timeliness", rating.timeliness),
                ("rating.effort", rating.effort),
            ] {
                if !(Rating::MIN..=Rating::MAX).contains(&value) {
                    return Err(ApiError::invalid(
                        field,
                        format!("give {} to {}", Rating::MIN, Rating::MAX),
                    ));
                }
            }
            RequestAction::Close {
                rating: Rating {
                    timeliness: rating.timeliness,
                    effort: rating.effort,
                },
            }
        }
        other => {
            return Err(ApiError::invalid(
                "action",
                format!("{other:?} is not a step of a request"),
            ));
        }
    };
    let mut content = said;
    if matches!(action, RequestAction::Answer { .. }) {
        let set = view
            .request
            .question_set
            .as_deref()
            .and_then(|k| k.parse().ok())
            .and_then(|k| state.catalogue.question_set(&k));
        let t = state.locales.tr(Language::En);
        let mut fields = BTreeMap::new();
        for (key, value) in &input.answers {
            let asked = view.request.fields.get(key).is_some_and(String::is_empty);
            if !asked {
                return Err(ApiError::invalid(
                    format!("answers.{key}"),
                    "not a question of this request",
                ));
            }
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if let Some(q) = questions::question(set, key)
                && let Some(why) = questions::check(q, value, &t)
            {
                return Err(ApiError::invalid(format!("answers.{key}"), why));
            }
            fields.insert(key.clone(), value.to_owned());
        }
        content.question_set = view.request.question_set.clone();
        content.fields = fields;
    } else if !input.answers.is_empty() {
        return Err(ApiError::invalid(
            "answers",
            "only answer and answer-part carry answers",
        ));
    }
    let carries_files = matches!(
        action,
        RequestAction::Answer { .. }
            | RequestAction::RequestInformation
            | RequestAction::ProvideInformation
    );
    if !input.attachments.is_empty() {
        if !carries_files {
            return Err(ApiError::invalid(
                "attachments",
                "only answers and requests for or replies with information carry files",
            ));
        }
        content.attachments = files(&input.attachments, state.max_attachment_bytes)?;
    }
    Ok((action, content))
}

/// The version `If-Match` names, if any (`*` matches any).
fn if_match(headers: &HeaderMap) -> Result<Option<Vec<String>>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid("If-Match", "not an entity tag"))?;
    if value.trim() == "*" {
        return Ok(None);
    }
    Ok(Some(
        value
            .split(',')
            .map(|t| {
                t.trim()
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .to_owned()
            })
            .collect(),
    ))
}

/// Takes a step in a request as the token's user.
#[utoipa::path(
    post,
    path = "/cases/{id}/steps",
    tag = "cases",
    request_body = StepIn,
    params(
        ("id" = String, Path, description = "The case", example = "01JDXAMPLE0000000000000000"),
        ("If-Match" = Option<String>, Header, description = "The case's version the step was decided on (its ETag)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body give the first response again")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The step was taken; the case as it is now", body = CaseOut,
            headers(("ETag" = String, description = "The case's new version"))),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The user may not take this step", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The case does not allow this step now", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The case changed since the version in If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn take_step(
    State(state): State<ApiState>,
    Caller(official): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<StepIn>,
) -> Result<Response, ApiError> {
    let case = case_id(&id)?;
    let view = state.node.case(official.id, case).await?;
    let current = version(&view);
    if let Some(expected) = if_match(&headers)?
        && !expected.contains(&current)
    {
        return Err(ApiError::PreconditionFailed {
            current: format!("\"{current}\""),
        });
    }
    let (action, content) = step_of(&input, &view, &state, &official)?;
    if !view.allowed.contains(&action.key()) {
        return Err(ApiError::Refused(format!(
            "the case ({}) does not allow {} now; it allows: {}",
            view.state.status_key(),
            action.key(),
            if view.allowed.is_empty() {
                "nothing".to_owned()
            } else {
                view.allowed.join(", ")
            }
        )));
    }
    state.node.act(official.id, case, action, content).await?;
    let view = state.node.case(official.id, case).await?;
    case_response(&view, StatusCode::OK)
}

/// A file of a step, as it was attached.
#[utoipa::path(
    get,
    path = "/cases/{id}/files/{step}/{index}",
    tag = "cases",
    params(
        ("id" = String, Path, description = "The case"),
        ("step" = String, Path, description = "The step that carried it"),
        ("index" = usize, Path, description = "Its place among the step's files, from 0")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file's bytes, with its media type", content_type = "application/octet-stream",
            headers(("x-content-sha256" = String, description = "Its SHA-256 in hex"))),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The user's authority takes no part in the case", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such file", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn file(
    State(state): State<ApiState>,
    Caller(official): Caller,
    Path((id, step, index)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let case = case_id(&id)?;
    let step: StepId = step
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no step {step:?}")))?;
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no file {index:?}")))?;
    let file = state
        .node
        .attachment(official.id, case, step, index)
        .await?;
    let media_type = file
        .media_type
        .parse::<HeaderValue>()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let digest = HeaderValue::from_str(&file.digest_hex()).unwrap_or(HeaderValue::from_static(""));
    Ok((
        [
            (header::CONTENT_TYPE, media_type),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
            (header::HeaderName::from_static("x-content-sha256"), digest),
        ],
        file.bytes,
    )
        .into_response())
}
