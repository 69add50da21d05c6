//! The language switcher on every page.

use axum::extract::State;
use axum::response::Redirect;
use axum::routing::post;
use axum::{Form, Router};
use imi_protocol::Language;
use serde::Deserialize;

use super::local_path;
use crate::context::{AppState, Ctx};
use crate::error::WebError;
use crate::i18n::is_ui_language;
use crate::session;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/language", post(choose))
}

#[derive(Debug, Deserialize)]
struct Choice {
    language: String,
    #[serde(default)]
    back: String,
}

/// Remembers the chosen language for the session and returns to the page.
async fn choose(
    State(_): State<AppState>,
    ctx: Ctx,
    Form(choice): Form<Choice>,
) -> Result<Redirect, WebError> {
    let language: Language = choice
        .language
        .parse()
        .ok()
        .filter(|l| is_ui_language(*l))
        .ok_or_else(|| WebError::BadRequest(format!("unknown language {:?}", choice.language)))?;
    session::set_language(&ctx.session, language)
        .await
        .map_err(WebError::Unavailable)?;
    Ok(Redirect::to(&local_path(&choice.back)))
}
