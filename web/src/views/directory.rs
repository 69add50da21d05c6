//! The directory pages: an authority, the registers directory and the
//! national helpdesks of every country.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use imi_protocol::{AuthorityId, Country, Language};
use serde::Deserialize;

use super::{Chrome, SelectOption, country_options, render};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/authorities/{country}/{id}", get(authority))
        .route("/registers", get(registers))
        .route("/helpdesks", get(helpdesks))
}

/// Text as written in `names`, in `language` where there is one, else the
/// first; with its language.
fn in_language(names: &BTreeMap<Language, String>, language: Language) -> (String, Language) {
    names
        .get_key_value(&language)
        .or_else(|| names.iter().next())
        .map_or((String::new(), language), |(l, n)| (n.clone(), *l))
}

pub(crate) struct CompetenceRow {
    area: String,
    procedures: Vec<String>,
    professions: Vec<String>,
    other: Vec<String>,
}

pub(crate) struct AuthorityView {
    name: String,
    name_lang: &'static str,
    country: String,
    /// Names: tag, text, language name.
    names: Vec<(&'static str, String, &'static str)>,
    competences: Vec<CompetenceRow>,
    /// Contact rows: label, text, link.
    contact: Vec<(String, String, Option<String>)>,
    languages: Vec<(&'static str, &'static str)>,
    node: String,
    send_href: String,
}

#[derive(Template)]
#[template(path = "authority.html")]
struct AuthorityTemplate {
    c: Chrome,
    a: AuthorityView,
}

async fn authority(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(_): SignedIn,
    Path((country, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    // An authority is named by its country and id everywhere.
    let country: Country = country.parse().map_err(|_| WebError::NotFound)?;
    let id: AuthorityId = id.parse().map_err(|_| WebError::NotFound)?;
    let found = state.node.authority(country, id).await?;
    let language = ctx.t.language();
    let catalogue = &state.catalogue;
    let (name, name_language) = in_language(&found.names, language);
    let competences = found
        .competences
        .iter()
        .map(|c| CompetenceRow {
            area: catalogue
                .area(&c.area)
                .map_or(c.area.as_str(), |a| a.label.get(language))
                .to_owned(),
            procedures: c
                .procedures
                .iter()
                .map(|p| {
                    catalogue
                        .procedure(p)
                        .map_or(p.as_str(), |p| p.label.get(language))
                        .to_owned()
                })
                .collect(),
            professions: c
                .professions
                .iter()
                .map(|p| {
                    catalogue
                        .profession(p)
                        .map_or(p.as_str(), |p| p.label.get(language))
                        .to_owned()
                })
                .collect(),
            other: c.other.clone(),
        })
        .collect();
    let contact = &found.contact;
    let address: Vec<&str> = [
        &contact.address,
        &contact.postal_code,
        &contact.city,
        &contact.region,
    ]
    .into_iter()
    .filter_map(|p| p.as_deref())
    .filter(|p| !p.trim().is_empty())
    .collect();
    let mut rows = vec![];
    if !address.is_empty() {
        rows.push((ctx.t.get("contact-address"), address.join(", "), None));
    }
    if let Some(email) = &contact.email {
        rows.push((
            ctx.t.get("contact-email"),
            email.clone(),
            Some(format!("mailto:{email}")),
        ));
    }
    if let Some(phone) = &contact.phone {
        rows.push((ctx.t.get("contact-phone"), phone.clone(), None));
    }
    if let Some(site) = &contact.website {
        let link =
            (site.starts_with("https://") || site.starts_with("http://")).then(|| site.clone());
        rows.push((ctx.t.get("contact-website"), site.clone(), link));
    }
    let view = AuthorityView {
        name: name.clone(),
        name_lang: name_language.tag(),
        country: catalogue.country_name(found.country, language).to_owned(),
        names: found
            .names
            .iter()
            .map(|(l, n)| (l.tag(), n.clone(), l.endonym()))
            .collect(),
        competences,
        contact: rows,
        languages: found
            .languages
            .iter()
            .map(|l| (l.tag(), l.endonym()))
            .collect(),
        send_href: format!(
            "/requests/new?country={}&authority={}",
            found.country.code(),
            found.id
        ),
        node: found.node,
    };
    let c = Chrome::new(&state, &ctx, "search", name).back("/search");
    Ok(render(&AuthorityTemplate { c, a: view }, StatusCode::OK))
}

#[derive(Debug, Default, Deserialize)]
struct CountryQuery {
    #[serde(default)]
    country: String,
}

pub(crate) struct RegisterRow {
    name: String,
    name_lang: &'static str,
    url: String,
    topics: String,
}

pub(crate) struct RegisterGroup {
    country: String,
    registers: Vec<RegisterRow>,
}

#[derive(Template)]
#[template(path = "registers.html")]
struct RegistersTemplate {
    c: Chrome,
    countries: Vec<SelectOption>,
    groups: Vec<RegisterGroup>,
}

async fn registers(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(_): SignedIn,
    Query(query): Query<CountryQuery>,
) -> Result<Response, WebError> {
    let country: Option<Country> = match query.country.trim() {
        "" => None,
        code => Some(
            code.parse()
                .map_err(|_| WebError::BadRequest(format!("country {code:?} is not known")))?,
        ),
    };
    let language = ctx.t.language();
    let catalogue = &state.catalogue;
    let mut by_country: BTreeMap<String, Vec<RegisterRow>> = BTreeMap::new();
    for register in state.node.registers(country).await? {
        let (name, name_language) = in_language(&register.names, language);
        let topics: Vec<&str> = register
            .professions
            .iter()
            .filter_map(|p| catalogue.profession(p).map(|p| p.label.get(language)))
            .chain(
                register
                    .areas
                    .iter()
                    .filter_map(|a| catalogue.area(a).map(|a| a.label.get(language))),
            )
            .collect();
        let url = if register.url.starts_with("https://") || register.url.starts_with("http://") {
            register.url.clone()
        } else {
            continue;
        };
        by_country
            .entry(
                catalogue
                    .country_name(register.country, language)
                    .to_owned(),
            )
            .or_default()
            .push(RegisterRow {
                name,
                name_lang: name_language.tag(),
                url,
                topics: topics.join(", "),
            });
    }
    let groups = by_country
        .into_iter()
        .map(|(country, registers)| RegisterGroup { country, registers })
        .collect();
    let c = Chrome::new(&state, &ctx, "registers", ctx.t.get("registers-title"));
    let countries = country_options(&state, language, country);
    Ok(render(
        &RegistersTemplate {
            c,
            countries,
            groups,
        },
        StatusCode::OK,
    ))
}

pub(crate) struct ContactRow {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    hours: Option<String>,
    languages: String,
}

pub(crate) struct DeskView {
    country: String,
    contacts: Vec<ContactRow>,
}

#[derive(Template)]
#[template(path = "helpdesks.html")]
struct HelpdesksTemplate {
    c: Chrome,
    desks: Vec<DeskView>,
}

async fn helpdesks(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(_): SignedIn,
) -> Result<Response, WebError> {
    let language = ctx.t.language();
    let mut desks: Vec<DeskView> = state
        .node
        .helpdesks()
        .await?
        .into_iter()
        .map(|desk| DeskView {
            country: state
                .catalogue
                .country_name(desk.country, language)
                .to_owned(),
            contacts: desk
                .contacts
                .into_iter()
                .map(|c| ContactRow {
                    name: c.name,
                    email: c.email,
                    phone: c.phone,
                    hours: c.hours,
                    languages: c
                        .languages
                        .iter()
                        .map(|l| l.endonym())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect(),
        })
        .collect();
    desks.sort_by(|a, b| a.country.cmp(&b.country));
    let c = Chrome::new(&state, &ctx, "helpdesks", ctx.t.get("helpdesks-title"));
    Ok(render(&HelpdesksTemplate { c, desks }, StatusCode::OK))
}
