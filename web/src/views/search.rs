//! Search of the authorities and registers of every country.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use imi_protocol::{AreaKey, Country, ProcedureKey, ProfessionKey};
use serde::Deserialize;

use super::{Chrome, SelectOption, country_options, encode, render};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;
use crate::interface::{EntryKind, SearchPage, SearchQuery};

/// Results per page.
const PER_PAGE: usize = 20;
/// Pages reachable at most (the index refuses deeper offsets).
const MAX_PAGES: usize = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

/// The search form as sent (every field optional; empty means none).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct SearchForm {
    #[serde(default)]
    pub(crate) q: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    area: String,
    #[serde(default)]
    procedure: String,
    #[serde(default)]
    profession: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    page: Option<usize>,
}

struct Parsed {
    country: Option<Country>,
    area: Option<AreaKey>,
    procedure: Option<ProcedureKey>,
    profession: Option<ProfessionKey>,
    kind: Option<EntryKind>,
    page: usize,
}

fn parse_optional<T: std::str::FromStr>(text: &str, what: &str) -> Result<Option<T>, WebError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| WebError::BadRequest(format!("{what} {text:?} is not known")))
}

impl SearchForm {
    fn parse(&self) -> Result<Parsed, WebError> {
        let kind = match self.kind.as_str() {
            "" => None,
            "authority" => Some(EntryKind::Authority),
            "register" => Some(EntryKind::Register),
            other => return Err(WebError::BadRequest(format!("kind {other:?} is not known"))),
        };
        Ok(Parsed {
            country: parse_optional(&self.country, "country")?,
            area: parse_optional(&self.area, "legislative area")?,
            procedure: parse_optional(&self.procedure, "procedure")?,
            profession: parse_optional(&self.profession, "profession")?,
            kind,
            page: self.page.unwrap_or(1).clamp(1, MAX_PAGES),
        })
    }

    fn is_empty(&self) -> bool {
        self.q.trim().is_empty()
            && self.country.is_empty()
            && self.area.is_empty()
            && self.procedure.is_empty()
            && self.profession.is_empty()
    }

    /// The address of this search with some fields changed.
    fn href(&self, country: Option<&str>, area: Option<&str>, page: Option<usize>) -> String {
        let mut parts = vec![format!("q={}", encode(self.q.trim()))];
        let pairs = [
            ("country", country.unwrap_or(&self.country)),
            ("area", area.unwrap_or(&self.area)),
            ("procedure", self.procedure.as_str()),
            ("profession", self.profession.as_str()),
            ("kind", self.kind.as_str()),
        ];
        for (name, value) in pairs {
            if !value.is_empty() {
                parts.push(format!("{name}={}", encode(value)));
            }
        }
        if let Some(page) = page.filter(|p| *p > 1) {
            parts.push(format!("page={page}"));
        }
        format!("/search?{}", parts.join("&"))
    }
}

/// A facet entry: a link narrowing the search, with its count.
pub(crate) struct FacetLink {
    label: String,
    count: u64,
    href: String,
    selected: bool,
}

/// A hit as the page shows it.
pub(crate) struct HitView {
    kind_label: String,
    name: String,
    name_lang: &'static str,
    country: String,
    city: Option<String>,
    competences: String,
    href: String,
}

/// The results part of the page.
pub(crate) struct ResultsView {
    total: usize,
    hits: Vec<HitView>,
    countries: Vec<FacetLink>,
    areas: Vec<FacetLink>,
    page: usize,
    pages: usize,
    previous: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchTemplate {
    c: Chrome,
    form: SearchForm,
    countries: Vec<SelectOption>,
    areas: Vec<SelectOption>,
    kinds: Vec<SelectOption>,
    results: Option<ResultsView>,
}

#[derive(Template)]
#[template(path = "search_results.html")]
struct ResultsFragment {
    c: Chrome,
    results: Option<ResultsView>,
}

async fn search(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(_): SignedIn,
    Query(form): Query<SearchForm>,
) -> Result<Response, WebError> {
    let language = ctx.t.language();
    let parsed = form.parse()?;
    let results = if form.is_empty() {
        None
    } else {
        let query = SearchQuery {
            text: form.q.trim().to_owned(),
            language,
            countries: parsed.country.into_iter().collect(),
            areas: parsed.area.clone().into_iter().collect(),
            procedures: parsed.procedure.clone().into_iter().collect(),
            professions: parsed.profession.clone().into_iter().collect(),
            kind: parsed.kind,
            offset: (parsed.page - 1) * PER_PAGE,
            limit: PER_PAGE,
        };
        let page = state.node.search(query).await?;
        Some(results_view(&state, &ctx, &form, &parsed, page))
    };
    let c = Chrome::new(&state, &ctx, "search", ctx.t.get("search-title"));
    if ctx.htmx {
        return Ok(render(&ResultsFragment { c, results }, StatusCode::OK));
    }
    let areas = {
        let mut areas: Vec<SelectOption> = state
            .catalogue
            .areas()
            .iter()
            .map(|a| SelectOption {
                value: a.key.as_str().to_owned(),
                label: a.label.get(language).to_owned(),
                selected: parsed.area.as_ref() == Some(&a.key),
            })
            .collect();
        areas.sort_by(|a, b| a.label.cmp(&b.label));
        areas
    };
    let kinds = [
        ("", "search-kind-all"),
        ("authority", "search-kind-authority"),
        ("register", "search-kind-register"),
    ]
    .into_iter()
    .map(|(value, id)| SelectOption {
        value: value.to_owned(),
        label: ctx.t.get(id),
        selected: form.kind == value,
    })
    .collect();
    let countries = country_options(&state, language, parsed.country);
    Ok(render(
        &SearchTemplate {
            c,
            form,
            countries,
            areas,
            kinds,
            results,
        },
        StatusCode::OK,
    ))
}

fn results_view(
    state: &AppState,
    ctx: &Ctx,
    form: &SearchForm,
    parsed: &Parsed,
    page: SearchPage,
) -> ResultsView {
    let language = ctx.t.language();
    let catalogue = &state.catalogue;
    let hits = page
        .hits
        .into_iter()
        .map(|hit| {
            let (kind_label, href) = match hit.kind {
                EntryKind::Authority => (
                    ctx.t.get("search-kind-label-authority"),
                    format!("/authorities/{}/{}", hit.country.code(), encode(&hit.id)),
                ),
                EntryKind::Register => (
                    ctx.t.get("search-kind-label-register"),
                    hit.url
                        .clone()
                        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                        .unwrap_or_else(|| format!("/registers?country={}", hit.country.code())),
                ),
            };
            HitView {
                kind_label,
                name: hit.name,
                name_lang: hit.name_language.tag(),
                country: catalogue.country_name(hit.country, language).to_owned(),
                city: hit.city,
                competences: hit.competences.join(", "),
                href,
            }
        })
        .collect();
    let countries = page
        .countries
        .iter()
        .map(|(country, count)| FacetLink {
            label: catalogue.country_name(*country, language).to_owned(),
            count: *count,
            href: form.href(Some(country.code()), None, None),
            selected: parsed.country == Some(*country),
        })
        .collect();
    let areas = page
        .areas
        .iter()
        .map(|(area, count)| FacetLink {
            label: catalogue
                .area(area)
                .map_or(area.as_str(), |a| a.label.get(language))
                .to_owned(),
            count: *count,
            href: form.href(None, Some(area.as_str()), None),
            selected: parsed.area.as_ref() == Some(area),
        })
        .collect();
    let pages = page.total.div_ceil(PER_PAGE).clamp(1, MAX_PAGES);
    let current = parsed.page.min(pages);
    ResultsView {
        total: page.total,
        hits,
        countries,
        areas,
        page: current,
        pages,
        previous: (current > 1).then(|| form.href(None, None, Some(current - 1))),
        next: (current < pages).then(|| form.href(None, None, Some(current + 1))),
    }
}
