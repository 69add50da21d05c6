//! Signing in and out.

use std::net::SocketAddr;
use std::time::Instant;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tracing::{info, warn};

use super::{Chrome, FieldError, local_path, render};
use crate::context::{AppState, Ctx};
use crate::error::WebError;
use crate::interface::NodeError;
use crate::session;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(page).post(submit))
        .route("/sign-out", post(sign_out))
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    c: Chrome,
    errors: Vec<FieldError>,
    login: String,
    next: String,
}

impl SignInPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.errors, field)
    }
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
    done: Option<String>,
}

async fn page(State(state): State<AppState>, ctx: Ctx, Query(query): Query<NextQuery>) -> Response {
    let next = local_path(query.next.as_deref().unwrap_or("/tasks"));
    if ctx.official.is_some() {
        return Redirect::to(&next).into_response();
    }
    let notice = (query.done.as_deref() == Some("signed-out")).then(|| ctx.t.get("signed-out"));
    let c = Chrome::new(&state, &ctx, "sign-in", ctx.t.get("sign-in-title")).notice(notice);
    render(
        &SignInPage {
            c,
            errors: vec![],
            login: String::new(),
            next,
        },
        StatusCode::OK,
    )
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<SignInForm>,
) -> Result<Response, WebError> {
    let next = local_path(if form.next.is_empty() {
        "/tasks"
    } else {
        &form.next
    });
    let login = form.login.trim().to_owned();
    let mut errors = vec![];
    if login.is_empty() {
        errors.push(FieldError {
            field: "login".into(),
            message: ctx.t.get("sign-in-missing-login"),
        });
    }
    if form.password.is_empty() {
        errors.push(FieldError {
            field: "password".into(),
            message: ctx.t.get("sign-in-missing-password"),
        });
    }
    if errors.is_empty() {
        let address = Some(peer.ip());
        if let Some(wait) = state.throttle.check(&login, address, Instant::now()) {
            warn!(login = %login, address = %peer.ip(), "sign-in refused: too many failures");
            return Err(WebError::Throttled {
                minutes: wait.as_secs().div_ceil(60).max(1),
            });
        }
        match state.node.sign_in(&login, &form.password).await {
            Ok(official) => {
                state.throttle.succeeded(&login);
                session::sign_in(&ctx.session, official.id)
                    .await
                    .map_err(WebError::Unavailable)?;
                info!(user = %official.id, "signed in to the web UI");
                return Ok(Redirect::to(&next).into_response());
            }
            Err(NodeError::Unavailable(reason)) => return Err(WebError::Unavailable(reason)),
            Err(err) => {
                state.throttle.failed(&login, address, Instant::now());
                info!(login = %login, address = %peer.ip(), error = %err, "sign-in failed");
                let message = match err {
                    NodeError::Deactivated => ctx.t.get("sign-in-deactivated"),
                    NodeError::AuthorityNotActive => ctx.t.get("sign-in-authority-inactive"),
                    _ => ctx.t.get("sign-in-wrong"),
                };
                errors.push(FieldError {
                    field: "login".into(),
                    message,
                });
            }
        }
    }
    let c = Chrome::new(&state, &ctx, "sign-in", ctx.t.get("sign-in-title"));
    Ok(render(
        &SignInPage {
            c,
            errors,
            login,
            next,
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

async fn sign_out(ctx: Ctx) -> Redirect {
    if let Some(official) = &ctx.official {
        info!(user = %official.id, "signed out of the web UI");
    }
    session::sign_out(&ctx.session).await;
    Redirect::to("/sign-in?done=signed-out")
}
