//! The directory through the API: search, authorities, registers,
//! helpdesks, and the catalogue in a chosen language.

use std::str::FromStr;

use axum::Json;
use axum::extract::{Path, State};
use imi_protocol::{Catalogue, Country, Language, ProcedureKind};

use super::ApiState;
use super::extract::{ApiQuery, Caller, next_cursor, page};
use super::model::{
    AreaOut, AuthorityOut, CatalogueOut, CompetenceOut, ContactOut, Count, HelpdeskContactOut,
    HelpdeskOut, LanguageParams, OptionOut, ProcedureOut, ProfessionOut, QuestionGroupOut,
    QuestionOut, QuestionSetOut, QuestionSetRef, RegisterOut, RegistersParams, SearchHitOut,
    SearchParams, SearchResults,
};
use super::problem::{ApiError, Problem};
use crate::interface::{EntryKind, Official, SearchQuery};

/// The reader's language: the one asked for, else the profile's.
pub(crate) fn language(asked: Option<&str>, official: &Official) -> Result<Language, ApiError> {
    match asked.map(str::trim).filter(|l| !l.is_empty()) {
        None => Ok(official.language),
        Some(tag) => tag.parse().map_err(|_| {
            ApiError::invalid("lang", format!("{tag:?} is not one of the 24 languages"))
        }),
    }
}

/// A comma-separated list of values of `field`.
fn list<T: FromStr>(field: &str, value: Option<&str>) -> Result<Vec<T>, ApiError> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::invalid(field, format!("{v:?} is not known")))
        })
        .collect()
}

/// A country as the API writes it.
pub(crate) fn country(field: &str, code: &str) -> Result<Country, ApiError> {
    code.trim()
        .parse()
        .map_err(|_| ApiError::invalid(field, format!("{code:?} is not a country code")))
}

/// Searches the directory of every country.
#[utoipa::path(
    get,
    path = "/search",
    tag = "directory",
    params(SearchParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of results, with facet counts of all", body = SearchResults),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn search(
    State(state): State<ApiState>,
    Caller(official): Caller,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    let lang = language(params.lang.as_deref(), &official)?;
    let (offset, limit) = page(params.cursor.as_deref(), params.limit)?;
    let kind = match params.kind.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("authority") => Some(EntryKind::Authority),
        Some("register") => Some(EntryKind::Register),
        Some(other) => {
            return Err(ApiError::invalid(
                "kind",
                format!("{other:?} is neither authority nor register"),
            ));
        }
    };
    let text = params.q.unwrap_or_default();
    if text.chars().count() > 500 {
        return Err(ApiError::invalid("q", "at most 500 characters"));
    }
    let query = SearchQuery {
        text: text.trim().to_owned(),
        language: lang,
        countries: list("country", params.country.as_deref())?,
        areas: list("area", params.area.as_deref())?,
        procedures: list("procedure", params.procedure.as_deref())?,
        professions: list("profession", params.profession.as_deref())?,
        kind,
        offset,
        limit,
    };
    let found = state.node.search(query).await?;
    Ok(Json(SearchResults {
        next_cursor: next_cursor(offset, limit, found.total),
        total: found.total,
        items: found
            .hits
            .into_iter()
            .map(|h| {
                let authority = h.kind == EntryKind::Authority;
                SearchHitOut {
                    kind: if authority { "authority" } else { "register" }.to_owned(),
                    href: authority
                        .then(|| format!("/api/v1/authorities/{}/{}", h.country.code(), h.id)),
                    id: h.id,
                    country: h.country.code().to_owned(),
                    name: h.name,
                    name_language: h.name_language.tag().to_owned(),
                    city: h.city,
                    competences: h.competences,
                    url: h.url,
                }
            })
            .collect(),
        countries: found
            .countries
            .into_iter()
            .map(|(c, count)| Count {
                key: c.code().to_owned(),
                count,
            })
            .collect(),
        areas: found
            .areas
            .into_iter()
            .map(|(a, count)| Count {
                key: a.as_str().to_owned(),
                count,
            })
            .collect(),
        countries_in_text: found
            .countries_in_text
            .into_iter()
            .map(|c| c.code().to_owned())
            .collect(),
    }))
}

/// One authority of the directory.
#[utoipa::path(
    get,
    path = "/authorities/{country}/{id}",
    tag = "directory",
    params(
        ("country" = String, Path, description = "Its country", example = "PT"),
        ("id" = String, Path, description = "Its id in its country", example = "ordem-dos-medicos")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The authority, as its country published it", body = AuthorityOut),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such authority", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn authority(
    State(state): State<ApiState>,
    _caller: Caller,
    Path((code, id)): Path<(String, String)>,
) -> Result<Json<AuthorityOut>, ApiError> {
    let country = country("country", &code)
        .map_err(|_| ApiError::NotFound(format!("no country {code:?}")))?;
    let id = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no authority {id:?}")))?;
    let page = state.node.authority(country, id).await?;
    Ok(Json(AuthorityOut {
        id: page.id.to_string(),
        country: page.country.code().to_owned(),
        names: page
            .names
            .into_iter()
            .map(|(l, n)| (l.tag().to_owned(), n))
            .collect(),
        competences: page
            .competences
            .into_iter()
            .map(|c| CompetenceOut {
                area: c.area.as_str().to_owned(),
                procedures: c.procedures.iter().map(|p| p.as_str().to_owned()).collect(),
                professions: c
                    .professions
                    .iter()
                    .map(|p| p.as_str().to_owned())
                    .collect(),
                other: c.other,
            })
            .collect(),
        contact: ContactOut {
            address: page.contact.address,
            postal_code: page.contact.postal_code,
            city: page.contact.city,
            region: page.contact.region,
            email: page.contact.email,
            phone: page.contact.phone,
            website: page.contact.website,
        },
        languages: page
            .languages
            .into_iter()
            .map(|l| l.tag().to_owned())
            .collect(),
        node: page.node,
    }))
}

/// The registers directory, of one country or all.
#[utoipa::path(
    get,
    path = "/registers",
    tag = "directory",
    params(RegistersParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The registers", body = Vec<RegisterOut>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a country", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn registers(
    State(state): State<ApiState>,
    _caller: Caller,
    ApiQuery(params): ApiQuery<RegistersParams>,
) -> Result<Json<Vec<RegisterOut>>, ApiError> {
    let country = match params.country.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(code) => Some(country("country", code)?),
    };
    let registers = state.node.registers(country).await?;
    Ok(Json(
        registers
            .into_iter()
            .map(|r| RegisterOut {
                id: r.id,
                country: r.country.code().to_owned(),
                names: r
                    .names
                    .into_iter()
                    .map(|(l, n)| (l.tag().to_owned(), n))
                    .collect(),
                url: r.url,
                areas: r.areas.iter().map(|a| a.as_str().to_owned()).collect(),
                professions: r
                    .professions
                    .iter()
                    .map(|p| p.as_str().to_owned())
                    .collect(),
                languages: r.languages.iter().map(|l| l.tag().to_owned()).collect(),
            })
            .collect(),
    ))
}

/// The national helpdesks of every country that published one.
#[utoipa::path(
    get,
    path = "/helpdesks",
    tag = "directory",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The helpdesks", body = Vec<HelpdeskOut>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn helpdesks(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<HelpdeskOut>>, ApiError> {
    let desks = state.node.helpdesks().await?;
    Ok(Json(
        desks
            .into_iter()
            .map(|d| HelpdeskOut {
                country: d.country.code().to_owned(),
                contacts: d
                    .contacts
                    .into_iter()
                    .map(|c| HelpdeskContactOut {
                        name: c.name,
                        email: c.email,
                        phone: c.phone,
                        hours: c.hours,
                        languages: c.languages.iter().map(|l| l.tag().to_owned()).collect(),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

fn procedure_kind(kind: ProcedureKind) -> &'static str {
    match kind {
        ProcedureKind::InformationRequest => "information-request",
        ProcedureKind::Alert => "alert",
        ProcedureKind::Notification => "notification",
        ProcedureKind::Repository => "repository",
        ProcedureKind::PublicCase => "public-case",
    }
}

/// The catalogue in one language.
#[utoipa::path(
    get,
    path = "/catalogue",
    tag = "directory",
    params(LanguageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Legislative areas with their procedures, question sets and professions", body = CatalogueOut),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a language", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn catalogue(
    State(state): State<ApiState>,
    Caller(official): Caller,
    ApiQuery(params): ApiQuery<LanguageParams>,
) -> Result<Json<CatalogueOut>, ApiError> {
    let lang = language(params.lang.as_deref(), &official)?;
    Ok(Json(catalogue_in(&state.catalogue, lang)))
}

fn catalogue_in(catalogue: &Catalogue, lang: Language) -> CatalogueOut {
    CatalogueOut {
        version: catalogue.version().to_owned(),
        language: lang.tag().to_owned(),
        areas: catalogue
            .areas()
            .iter()
            .map(|area| AreaOut {
                key: area.key.as_str().to_owned(),
                label: area.label.get(lang).to_owned(),
                legal_basis: area.legal_basis.clone(),
                procedures: catalogue
                    .procedures_of(&area.key)
                    .map(|p| ProcedureOut {
                        key: p.key.as_str().to_owned(),
                        kind: procedure_kind(p.kind).to_owned(),
                        label: p.label.get(lang).to_owned(),
                        reply_days: p.reply_days,
                        question_sets: p
                            .question_sets
                            .iter()
                            .filter_map(|k| catalogue.question_set(k))
                            .map(|s| QuestionSetRef {
                                key: s.key.as_str().to_owned(),
                                label: s.label.get(lang).to_owned(),
                                href: format!("/api/v1/catalogue/question-sets/{}", s.key.as_str()),
                            })
                            .collect(),
                    })
                    .collect(),
                professions: catalogue
                    .professions_of(&area.key)
                    .map(|p| ProfessionOut {
                        key: p.key.as_str().to_owned(),
                        label: p.label.get(lang).to_owned(),
                        sectoral: p.sectoral,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A question set with its questions, in one language.
#[utoipa::path(
    get,
    path = "/catalogue/question-sets/{key}",
    tag = "directory",
    params(
        ("key" = String, Path, description = "The question set", example = "pq-doctor"),
        LanguageParams
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The question set", body = QuestionSetOut),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question set", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn question_set(
    State(state): State<ApiState>,
    Caller(official): Caller,
    Path(key): Path<String>,
    ApiQuery(params): ApiQuery<LanguageParams>,
) -> Result<Json<QuestionSetOut>, ApiError> {
    let lang = language(params.lang.as_deref(), &official)?;
    let set = key
        .parse()
        .ok()
        .and_then(|k| state.catalogue.question_set(&k))
        .ok_or_else(|| ApiError::NotFound(format!("no question set {key:?}")))?;
    let area = state
        .catalogue
        .procedure(&set.procedure)
        .map(|p| p.area.as_str().to_owned())
        .unwrap_or_default();
    Ok(Json(QuestionSetOut {
        key: set.key.as_str().to_owned(),
        procedure: set.procedure.as_str().to_owned(),
        area,
        label: set.label.get(lang).to_owned(),
        groups: set
            .groups
            .iter()
            .map(|g| QuestionGroupOut {
                key: g.key.clone(),
                label: g.label.get(lang).to_owned(),
                given_by_requester: crate::views::questions::PROVIDED_GROUPS
                    .contains(&g.key.as_str()),
                questions: g
                    .questions
                    .iter()
                    .map(|q| {
                        let (answer, options) = match &q.answer {
                            imi_protocol::AnswerType::Text => ("text", vec![]),
                            imi_protocol::AnswerType::YesNo => ("yes-no", vec![]),
                            imi_protocol::AnswerType::Date => ("date", vec![]),
                            imi_protocol::AnswerType::Number => ("number", vec![]),
                            imi_protocol::AnswerType::Attachment => ("attachment", vec![]),
                            imi_protocol::AnswerType::Choice { options } => (
                                "choice",
                                options
                                    .iter()
                                    .map(|o| OptionOut {
                                        key: o.key.clone(),
                                        label: o.label.get(lang).to_owned(),
                                    })
                                    .collect(),
                            ),
                        };
                        QuestionOut {
                            key: q.key.as_str().to_owned(),
                            label: q.label.get(lang).to_owned(),
                            answer: answer.to_owned(),
                            options,
                            personal_data: q.personal_data,
                            required: q.required,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }))
}
