//! The node's status, for its national coordinators: the nodes it is
//! linked to and until when their certificates hold, what other nodes
//! refused, and what the store holds.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use imi_protocol::Timestamp;

use super::{Chrome, render, when};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;
use crate::upload::human_size;

/// A certificate that ends within this many days is marked.
const EXPIRING_DAYS: u64 = 30;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/status", get(page))
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusTemplate {
    c: Chrome,
    catalogue: String,
    store_size: String,
    /// Node, certificate end, ending soon.
    peers: Vec<(String, String, bool)>,
    refused: Vec<(String, String)>,
    cases: Vec<(String, u64)>,
    sent: Vec<(String, u64)>,
    rejections: Vec<(String, u64)>,
    received: u64,
    outbox: u64,
}

async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
) -> Result<Response, WebError> {
    let status = state.node.node_status(official.id).await?;
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let soon = now.plus_days(EXPIRING_DAYS);
    let c = Chrome::new(&state, &ctx, "status", ctx.t.get("node-status-title"));
    Ok(render(
        &StatusTemplate {
            c,
            catalogue: status.catalogue_version,
            store_size: human_size(usize::try_from(status.store_bytes).unwrap_or(usize::MAX)),
            peers: status
                .peers
                .into_iter()
                .map(|p| {
                    (
                        p.node,
                        when(p.certificate_until),
                        p.certificate_until < soon,
                    )
                })
                .collect(),
            refused: status.refused,
            cases: status.cases,
            sent: status.sent,
            rejections: status.rejections,
            received: status.received,
            outbox: status.outbox,
        },
        StatusCode::OK,
    ))
}
