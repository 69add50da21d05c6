//! My tasks: everything waiting for the user and their authority, from the
//! task lists the node keeps (never a scan of all cases).

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use imi_protocol::AreaKey;
use serde::Deserialize;

use super::{Chrome, SelectOption, render, status_message, task_message};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;
use crate::interface::{TaskFilter, TaskQuery};

/// Tasks per page.
const PAGE: usize = 50;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/tasks", get(page))
}

#[derive(Debug, Default, Deserialize)]
struct Filters {
    show: Option<String>,
    sort: Option<String>,
    page: Option<usize>,
}

pub(crate) struct Row {
    href: String,
    task: String,
    reference: String,
    with: Option<(String, &'static str)>,
    area: String,
    status: String,
    due: Option<String>,
    overdue: bool,
    personal: bool,
    updated: String,
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksTemplate {
    c: Chrome,
    rows: Vec<Row>,
    total: usize,
    overdue: usize,
    show: Vec<SelectOption>,
    sort: Vec<SelectOption>,
    previous: Option<String>,
    next: Option<String>,
    page: usize,
    pages: usize,
}

fn options(choices: &[(&str, String)], chosen: &str) -> Vec<SelectOption> {
    choices
        .iter()
        .map(|(value, label)| SelectOption {
            value: (*value).to_owned(),
            label: label.clone(),
            selected: *value == chosen,
        })
        .collect()
}

async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Query(filters): Query<Filters>,
) -> Result<Response, WebError> {
    let t = &ctx.t;
    let language = t.language();
    let show = match filters.show.as_deref() {
        Some("overdue") => "overdue",
        Some("mine") => "mine",
        _ => "all",
    };
    let sort = match filters.sort.as_deref() {
        Some("updated") => "updated",
        _ => "due",
    };
    let requested = filters.page.unwrap_or(1).max(1);
    let query = |page: usize| TaskQuery {
        filter: match show {
            "overdue" => TaskFilter::Overdue,
            "mine" => TaskFilter::Mine,
            _ => TaskFilter::All,
        },
        by_update: sort == "updated",
        offset: (page - 1) * PAGE,
        limit: PAGE,
    };
    let mut list = state.node.tasks(official.id, query(requested)).await?;
    let pages = list.total.div_ceil(PAGE).max(1);
    let page = requested.min(pages);
    if page != requested {
        list = state.node.tasks(official.id, query(page)).await?;
    }
    let today = list.today;
    let (total, overdue) = (list.total, list.overdue);
    let area_label = |key: &str| -> String {
        key.parse::<AreaKey>()
            .ok()
            .and_then(|k| {
                state
                    .catalogue
                    .area(&k)
                    .map(|a| a.label.get(language).to_owned())
            })
            .unwrap_or_else(|| key.to_owned())
    };
    let rows = list
        .tasks
        .into_iter()
        .map(|task| Row {
            href: format!("/cases/{}", task.case),
            task: t.get(task_message(task.kind)),
            reference: task.case.to_string(),
            with: task.counterpart.map(|p| (p.name, p.language.tag())),
            area: area_label(&task.area),
            status: t.get(&status_message(&task.status)),
            due: task.due.map(|d| d.to_string()),
            overdue: task.due.is_some_and(|due| due < today),
            personal: task.personal,
            updated: super::when(task.updated_at),
        })
        .collect();
    let link = |page: usize| format!("/tasks?show={show}&sort={sort}&page={page}");
    let c = Chrome::new(&state, &ctx, "tasks", t.get("tasks-title"));
    Ok(render(
        &TasksTemplate {
            rows,
            total,
            overdue,
            show: options(
                &[
                    ("all", t.get("tasks-filter-all")),
                    ("overdue", t.get("tasks-filter-overdue")),
                    ("mine", t.get("tasks-filter-mine")),
                ],
                show,
            ),
            sort: options(
                &[
                    ("due", t.get("tasks-sort-due")),
                    ("updated", t.get("tasks-sort-updated")),
                ],
                sort,
            ),
            previous: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            page,
            pages,
            c,
        },
        StatusCode::OK,
    ))
}
