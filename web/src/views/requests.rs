//! A new request: choose the question set, give what is known about the
//! professional, tick the questions to ask, write a message and a reply-by
//! date; check it; send it (or keep it as a draft).
//!
//! `GET /requests/new?country=PT&authority=…[&set=…]` shows the form;
//! `POST /requests` checks it and shows "check your request", or, with
//! `intent=send` / `intent=draft`, writes it; `intent=change` returns to
//! the form with what was entered.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use imi_protocol::{
    Attachment, AuthorityId, Content, Country, Date, FreeText, Party, ProcedureKind, QuestionSet,
};
use serde::Deserialize;

use super::questions::{self, Field, PROVIDED_GROUPS};
use super::{Chrome, FieldError, render};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;
use crate::interface::{NewRequest, Official};
use crate::upload::{self, Carried, Submitted};

/// Days to reply when the procedure sets none.
const DEFAULT_REPLY_DAYS: i64 = 14;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/requests/new", get(new)).route(
        "/requests",
        post(submit).layer(DefaultBodyLimit::max(upload::MAX_FORM_BYTES)),
    )
}

#[derive(Debug, Deserialize)]
struct Target {
    country: String,
    authority: String,
    set: Option<String>,
}

/// The authority asked, with its name.
struct To {
    party: Party,
    name: String,
    lang: &'static str,
}

/// A question set the request may use: key, label (area — set).
type SetChoice = (String, String, bool);

#[derive(Template)]
#[template(path = "request_new.html")]
struct NewTemplate {
    c: Chrome,
    to_name: String,
    to_lang: &'static str,
    country: String,
    authority: String,
    sets: Vec<SetChoice>,
    set: Option<String>,
    set_label: String,
    /// Groups of details the requester gives: heading, fields.
    provided: Groups,
    /// Groups of questions to ask: heading, fields.
    asked: Groups,
    message: String,
    reply_by: String,
    /// Files chosen before, carried in hidden fields.
    carried: Vec<Carried>,
    files_hint: String,
    errors: Vec<FieldError>,
}

impl NewTemplate {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.errors, field)
    }
}

#[derive(Template)]
#[template(path = "request_check.html")]
struct CheckTemplate {
    c: Chrome,
    to_name: String,
    to_lang: &'static str,
    area: String,
    /// Label, answer, personal data.
    provided: Vec<(String, String, bool)>,
    asked: Vec<String>,
    message: String,
    reply_by: String,
    /// Every entered value, carried in hidden fields.
    hidden: Vec<(String, String)>,
    /// The files, carried in hidden fields.
    carried: Vec<Carried>,
}

fn parse_target(country: &str, authority: &str) -> Result<Party, WebError> {
    let country: Country = country.parse().map_err(|_| WebError::NotFound)?;
    let authority: AuthorityId = authority.parse().map_err(|_| WebError::NotFound)?;
    Ok(Party { authority, country })
}

async fn to(state: &AppState, party: Party, ctx: &Ctx) -> Result<(To, Vec<String>), WebError> {
    let page = state.node.authority(party.country, party.authority).await?;
    let language = ctx.t.language();
    let (lang, name) = page
        .names
        .get_key_value(&language)
        .or_else(|| page.names.iter().next())
        .map_or((language, party.authority.to_string()), |(l, n)| {
            (*l, n.clone())
        });
    let areas = page
        .competences
        .iter()
        .map(|c| c.area.as_str().to_owned())
        .collect();
    Ok((
        To {
            party,
            name,
            lang: lang.tag(),
        },
        areas,
    ))
}

/// The question sets of information requests in the areas both the
/// user's authority and the authority asked work in: set, its area, and
/// the procedure's reply days.
fn sets<'a>(
    state: &'a AppState,
    official: &Official,
    their_areas: &[String],
) -> Vec<(&'a QuestionSet, String, Option<u16>)> {
    let catalogue = &state.catalogue;
    let mut found = vec![];
    for procedure in catalogue.procedures() {
        if procedure.kind != ProcedureKind::InformationRequest {
            continue;
        }
        let area = procedure.area.as_str();
        if !their_areas.iter().any(|a| a == area) || !official.areas.contains(&procedure.area) {
            continue;
        }
        for key in &procedure.question_sets {
            if let Some(set) = catalogue.question_set(key) {
                found.push((set, area.to_owned(), procedure.reply_days));
            }
        }
    }
    found
}

fn set_label(state: &AppState, ctx: &Ctx, set: &QuestionSet, area: &str) -> String {
    let language = ctx.t.language();
    let area = area
        .parse()
        .ok()
        .and_then(|k| state.catalogue.area(&k))
        .map_or(area.to_owned(), |a| a.label.get(language).to_owned());
    format!("{area} — {}", set.label.get(language))
}

/// What the form holds.
#[derive(Default)]
struct Entered {
    values: BTreeMap<String, String>,
    asked: Vec<String>,
    message: String,
    reply_by: String,
    files: Vec<Attachment>,
}

impl Entered {
    fn from_pairs(pairs: &[(String, String)]) -> Entered {
        let mut entered = Entered::default();
        for (name, value) in pairs {
            if let Some(key) = name.strip_prefix("q-") {
                entered
                    .values
                    .insert(key.to_owned(), value.trim().to_owned());
            } else if name == "ask" {
                entered.asked.push(value.clone());
            } else if name == "message" {
                entered.message = value.trim().to_owned();
            } else if name == "reply_by" {
                entered.reply_by = value.trim().to_owned();
            }
        }
        entered
    }
}

/// Groups of fields under their heading.
type Groups = Vec<(String, Vec<Field>)>;

/// The set's groups: those whose details the requester gives, and those
/// whose questions may be asked.
fn groups(
    set: &QuestionSet,
    entered: &Entered,
    errors: &[FieldError],
    ctx: &Ctx,
) -> (Groups, Groups) {
    let language = ctx.t.language();
    let mut provided = vec![];
    let mut asked = vec![];
    for group in &set.groups {
        let heading = group.label.get(language).to_owned();
        if PROVIDED_GROUPS.contains(&group.key.as_str()) {
            let fields = group
                .questions
                .iter()
                .map(|q| {
                    let value = entered
                        .values
                        .get(q.key.as_str())
                        .map_or("", String::as_str);
                    let mut f = questions::field(q, "q-", value, language);
                    f.error = super::error_for(errors, &f.name).map(str::to_owned);
                    f
                })
                .collect();
            provided.push((heading, fields));
        } else {
            let fields: Vec<Field> = group
                .questions
                .iter()
                .filter(|q| !matches!(q.answer, imi_protocol::AnswerType::Attachment))
                .map(|q| {
                    let mut f = questions::field(q, "ask-", "", language);
                    f.asked = entered.asked.iter().any(|a| a == q.key.as_str());
                    f
                })
                .collect();
            if !fields.is_empty() {
                asked.push((heading, fields));
            }
        }
    }
    (provided, asked)
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    state: &AppState,
    ctx: &Ctx,
    official: &Official,
    to: &To,
    their_areas: &[String],
    chosen: Option<&str>,
    entered: &Entered,
    errors: Vec<FieldError>,
) -> Response {
    let available = sets(state, official, their_areas);
    let chosen_set =
        chosen.and_then(|key| available.iter().find(|(s, _, _)| s.key.as_str() == key));
    let chosen_set = chosen_set.or(if available.len() == 1 {
        available.first()
    } else {
        None
    });
    let (provided, asked, label, reply_by) = match chosen_set {
        Some((set, area, days)) => {
            let (provided, asked) = groups(set, entered, &errors, ctx);
            let reply_by = if entered.reply_by.is_empty() {
                let today = crate::views::today();
                today
                    .checked_add_days(days.map_or(DEFAULT_REPLY_DAYS, i64::from))
                    .unwrap_or(today)
                    .to_string()
            } else {
                entered.reply_by.clone()
            };
            (provided, asked, set_label(state, ctx, set, area), reply_by)
        }
        None => (vec![], vec![], String::new(), String::new()),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let c = Chrome::new(state, ctx, "tasks", ctx.t.get("request-new-title")).back(format!(
        "/authorities/{}/{}",
        to.party.country.code(),
        to.party.authority
    ));
    render(
        &NewTemplate {
            c,
            to_name: to.name.clone(),
            to_lang: to.lang,
            country: to.party.country.code().to_owned(),
            authority: to.party.authority.to_string(),
            sets: available
                .iter()
                .map(|(set, area, _)| {
                    (
                        set.key.as_str().to_owned(),
                        set_label(state, ctx, set, area),
                        chosen_set.is_some_and(|(s, _, _)| s.key == set.key),
                    )
                })
                .collect(),
            set: chosen_set.map(|(s, _, _)| s.key.as_str().to_owned()),
            set_label: label,
            provided,
            asked,
            message: entered.message.clone(),
            reply_by,
            carried: upload::carried(&entered.files),
            files_hint: files_hint(state, ctx),
            errors,
        },
        status,
    )
}

/// What the file field says of the limits.
pub(super) fn files_hint(state: &AppState, ctx: &Ctx) -> String {
    ctx.t.with2(
        "attachment-hint",
        "count",
        &imi_protocol::MAX_ATTACHMENTS_PER_STEP.to_string(),
        "size",
        &upload::human_size(state.max_attachment_bytes),
    )
}

async fn new(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Query(target): Query<Target>,
) -> Result<Response, WebError> {
    let party = parse_target(&target.country, &target.authority)?;
    let (to, areas) = to(&state, party, &ctx).await?;
    Ok(form_page(
        &state,
        &ctx,
        &official,
        &to,
        &areas,
        target.set.as_deref(),
        &Entered::default(),
        vec![],
    ))
}

fn value_of<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    submitted: Submitted,
) -> Result<Response, WebError> {
    let t = &ctx.t;
    let pairs = &submitted.pairs;
    let party = parse_target(
        value_of(pairs, "country").unwrap_or_default(),
        value_of(pairs, "authority").unwrap_or_default(),
    )?;
    let (to, their_areas) = to(&state, party, &ctx).await?;
    let set_key = value_of(pairs, "set").unwrap_or_default().to_owned();
    let mut entered = Entered::from_pairs(pairs);
    let files = upload::attachments(&submitted, "attachments", state.max_attachment_bytes, t);
    if let Ok(files) = &files {
        entered.files.clone_from(files);
    }
    let available = sets(&state, &official, &their_areas);
    let Some((set, area, _)) = available
        .iter()
        .find(|(s, _, _)| s.key.as_str() == set_key)
        .cloned()
    else {
        return Err(WebError::BadRequest(format!(
            "question set {set_key:?} cannot be used for this authority"
        )));
    };
    let intent = value_of(pairs, "intent").unwrap_or("check");
    if intent == "change" {
        return Ok(form_page(
            &state,
            &ctx,
            &official,
            &to,
            &their_areas,
            Some(&set_key),
            &entered,
            vec![],
        ));
    }
    // Check every field, in the order of the form.
    let mut errors = vec![];
    if let Err(error) = files {
        errors.push(error);
    }
    let mut fields = BTreeMap::new();
    for group in &set.groups {
        let provided = PROVIDED_GROUPS.contains(&group.key.as_str());
        for q in &group.questions {
            let key = q.key.as_str();
            if provided {
                let value = entered.values.get(key).map_or("", String::as_str);
                if value.is_empty() {
                    if q.required {
                        errors.push(FieldError::named(
                            format!("q-{key}"),
                            t.get("request-missing-answer"),
                        ));
                    }
                    continue;
                }
                if let Some(message) = questions::check(q, value, t) {
                    errors.push(FieldError::named(format!("q-{key}"), message));
                    continue;
                }
                fields.insert(key.to_owned(), value.to_owned());
            } else if entered.asked.iter().any(|a| a == key) {
                fields.insert(key.to_owned(), String::new());
            }
        }
    }
    let asked_any = fields.values().any(String::is_empty);
    if !asked_any {
        errors.push(FieldError::named("questions", t.get("request-no-question")));
    }
    let today = crate::views::today();
    let reply_by = entered
        .reply_by
        .parse::<Date>()
        .ok()
        .filter(|d| *d >= today);
    if reply_by.is_none() {
        errors.push(FieldError::named("reply_by", t.get("request-bad-reply-by")));
    }
    if !errors.is_empty() {
        return Ok(form_page(
            &state,
            &ctx,
            &official,
            &to,
            &their_areas,
            Some(&set_key),
            &entered,
            errors,
        ));
    }
    let content = Content {
        question_set: Some(set_key.clone()),
        fields: fields.clone(),
        text: (!entered.message.is_empty()).then(|| FreeText {
            language: t.language(),
            text: entered.message.clone(),
        }),
        attachments: entered.files.clone(),
    };
    match intent {
        "send" | "draft" => {
            let case = state
                .node
                .new_request(
                    official.id,
                    NewRequest {
                        to: party,
                        area: area.clone(),
                        content,
                        send: if intent == "send" { reply_by } else { None },
                    },
                )
                .await?;
            Ok(Redirect::to(&format!("/cases/{case}?done={intent}")).into_response())
        }
        _ => {
            let language = t.language();
            let set_ref = Some(set);
            let mut ordered: Vec<(&String, &String)> = fields.iter().collect();
            ordered.sort_by_key(|(k, _)| questions::position(set_ref, k));
            let provided = ordered
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| {
                    let q = questions::question(set_ref, k);
                    (
                        q.map_or(k.to_string(), |q| q.label.get(language).to_owned()),
                        questions::shown(q, v, t),
                        q.is_some_and(|q| q.personal_data),
                    )
                })
                .collect();
            let asked = ordered
                .iter()
                .filter(|(_, v)| v.is_empty())
                .map(|(k, _)| {
                    questions::question(set_ref, k)
                        .map_or(k.to_string(), |q| q.label.get(language).to_owned())
                })
                .collect();
            let mut hidden: Vec<(String, String)> = pairs
                .iter()
                .filter(|(n, _)| n != "intent" && !n.starts_with("carried-"))
                .cloned()
                .collect();
            hidden.retain(|(n, _)| !n.is_empty());
            let c = Chrome::new(&state, &ctx, "tasks", t.get("request-check-title"));
            Ok(render(
                &CheckTemplate {
                    c,
                    to_name: to.name,
                    to_lang: to.lang,
                    area: set_label(&state, &ctx, set, &area),
                    provided,
                    asked,
                    message: entered.message,
                    reply_by: entered.reply_by,
                    hidden,
                    carried: upload::carried(&entered.files),
                },
                StatusCode::OK,
            ))
        }
    }
}
