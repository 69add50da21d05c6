//! My profile: the user's authority, areas, roles and rights, language, and
//! password change.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use imi_protocol::{AreaKey, Language, Role};
use serde::Deserialize;
use tracing::info;

use super::{Chrome, FieldError, render};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;
use crate::i18n::is_ui_language;
use crate::interface::{NodeError, Official};

/// The shortest password the node accepts (its policy decides; this only
/// feeds the hint).
const MIN_PASSWORD_CHARS: usize = 12;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/profile", get(page))
        .route("/profile/language", post(set_language))
        .route("/profile/password", post(change_password))
}

pub(crate) struct ProfileView {
    name: String,
    login: String,
    email: String,
    authority: String,
    authority_lang: &'static str,
    areas: Vec<String>,
    /// Area (or "every area") → role descriptions.
    roles: Vec<(String, Vec<String>)>,
    language: &'static str,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfileTemplate {
    c: Chrome,
    p: ProfileView,
    errors: Vec<FieldError>,
    min_chars: usize,
}

impl ProfileTemplate {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.errors, field)
    }
}

/// The message describing a role.
pub(crate) fn role_message(role: Role) -> &'static str {
    match role {
        Role::RequestHandler => "role-request-handler",
        Role::Allocator => "role-allocator",
        Role::AlertCoordinator => "role-alert-coordinator",
        Role::AuthorityAdministrator => "role-authority-administrator",
        Role::NationalCoordinator => "role-national-coordinator",
        Role::CommissionObserver => "role-commission-observer",
    }
}

fn view(state: &AppState, ctx: &Ctx, official: &Official) -> ProfileView {
    let language = ctx.t.language();
    let catalogue = &state.catalogue;
    let (authority, authority_language) = official
        .authority_names
        .get_key_value(&language)
        .or_else(|| official.authority_names.iter().next())
        .map_or((String::new(), language), |(l, n)| (n.clone(), *l));
    let area_label = |key: &str| -> String {
        if key == imi_protocol::ALL_AREAS {
            return ctx.t.get("profile-every-area");
        }
        key.parse::<AreaKey>()
            .ok()
            .and_then(|k| catalogue.area(&k).map(|a| a.label.get(language).to_owned()))
            .unwrap_or_else(|| key.to_owned())
    };
    ProfileView {
        name: official.name.clone(),
        login: official.login.clone(),
        email: official.email.clone(),
        authority,
        authority_lang: authority_language.tag(),
        areas: official
            .areas
            .iter()
            .map(|a| area_label(a.as_str()))
            .collect(),
        roles: official
            .access
            .iter()
            .filter(|(_, roles)| !roles.is_empty())
            .map(|(area, roles)| {
                (
                    area_label(area),
                    roles.iter().map(|r| ctx.t.get(role_message(*r))).collect(),
                )
            })
            .collect(),
        language: if is_ui_language(official.language) {
            official.language.tag()
        } else {
            Language::En.tag()
        },
    }
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

fn profile_page(
    state: &AppState,
    ctx: &Ctx,
    official: &Official,
    errors: Vec<FieldError>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let c = Chrome::new(state, ctx, "profile", ctx.t.get("profile-title")).notice(notice);
    render(
        &ProfileTemplate {
            c,
            p: view(state, ctx, official),
            errors,
            min_chars: MIN_PASSWORD_CHARS,
        },
        status,
    )
}

async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Query(done): Query<Done>,
) -> Response {
    let notice = match done.done.as_deref() {
        Some("language") => Some(ctx.t.get("profile-language-saved")),
        Some("password") => Some(ctx.t.get("password-changed")),
        _ => None,
    };
    profile_page(&state, &ctx, &official, vec![], notice, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct LanguageForm {
    language: String,
}

async fn set_language(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Form(form): Form<LanguageForm>,
) -> Result<Redirect, WebError> {
    let language: Language = form
        .language
        .parse()
        .ok()
        .filter(|l| is_ui_language(*l))
        .ok_or_else(|| WebError::BadRequest(format!("unknown language {:?}", form.language)))?;
    state.node.set_language(official.id, language).await?;
    // The profile's language now applies; a switcher choice would hide it.
    crate::session::set_language(&ctx.session, language)
        .await
        .map_err(WebError::Unavailable)?;
    info!(user = %official.id, language = %language, "profile language set");
    Ok(Redirect::to("/profile?done=language"))
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn change_password(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let t = &ctx.t;
    let mut errors = vec![];
    if form.current.is_empty() {
        errors.push(FieldError {
            field: "current".into(),
            message: t.get("password-missing-current"),
        });
    }
    if form.new.chars().count() < MIN_PASSWORD_CHARS {
        errors.push(FieldError {
            field: "new".into(),
            message: t.count("password-weak", "min", MIN_PASSWORD_CHARS),
        });
    } else if form.new != form.confirm {
        errors.push(FieldError {
            field: "confirm".into(),
            message: t.get("password-mismatch"),
        });
    }
    if errors.is_empty() {
        match state
            .node
            .change_password(official.id, &form.current, &form.new)
            .await
        {
            Ok(()) => {
                info!(user = %official.id, "password changed in the web UI");
                return Ok(Redirect::to("/profile?done=password").into_response());
            }
            Err(NodeError::WrongCredentials) => errors.push(FieldError {
                field: "current".into(),
                message: t.get("password-wrong-current"),
            }),
            Err(NodeError::WeakPassword(reason)) => {
                info!(user = %official.id, reason = %reason, "new password refused");
                errors.push(FieldError {
                    field: "new".into(),
                    message: t.count("password-weak", "min", MIN_PASSWORD_CHARS),
                });
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(profile_page(
        &state,
        &ctx,
        &official,
        errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}
