//! Users of the authority, for its local data administrator: who they are,
//! their roles per area, who signed in when; the areas where nobody stands
//! in for a request handler, and who has not signed in for 90 days; adding
//! a user, changing roles, deactivating and reactivating, resetting a
//! password.
//!
//! Only holders of the authority administrator role see these pages, and
//! only for their own authority's users; the node checks both again on
//! every call ([`crate::NodeInterface::authority_users`]).

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use imi_protocol::{ALL_AREAS, AreaKey, Language, Role, UserId};
use serde::Deserialize;
use tracing::info;

use super::profile::role_message;
use super::{Chrome, FieldError, render, when};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;
use crate::i18n::is_ui_language;
use crate::interface::{
    AuthorityUsers, INACTIVE_DAYS, ManagedUser, NodeError, Official, UserDraft, UserRefusal,
};

/// The shortest password the node accepts (its policy decides; this only
/// feeds the hint and the message).
const MIN_PASSWORD_CHARS: usize = 12;

/// The roles an administrator gives per legislative area.
const AREA_ROLES: [Role; 2] = [Role::RequestHandler, Role::Allocator];

/// The roles an administrator gives for every area.
const EVERY_AREA_ROLES: [Role; 1] = [Role::AuthorityAdministrator];

/// Where the error summary leads for the roles: the first checkbox.
const ROLES_FIELD: &str = "roles";

/// The messages this module names by a key, for the test that every
/// message exists.
#[cfg(test)]
pub(super) fn message_ids() -> Vec<&'static str> {
    [
        UserRefusal::DuplicateLogin,
        UserRefusal::BadLogin,
        UserRefusal::BadName,
        UserRefusal::BadEmail,
        UserRefusal::WeakPassword,
        UserRefusal::BadRoles,
        UserRefusal::OwnAccount,
    ]
    .into_iter()
    .map(|r| refusal_message(r).1)
    .chain([
        "users-added",
        "users-roles-saved",
        "users-deactivated-notice",
        "users-reactivated-notice",
        "users-password-set",
        "users-gap-none",
        "users-gap-one",
    ])
    .collect()
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/authority/users", get(list).post(add))
        .route("/authority/users/new", get(new_form))
        .route("/authority/users/{id}", get(user_page))
        .route("/authority/users/{id}/roles", post(set_roles))
        .route("/authority/users/{id}/deactivate", post(deactivate))
        .route("/authority/users/{id}/reactivate", post(reactivate))
        .route("/authority/users/{id}/password", post(reset_password))
}

/// Whether the signed-in official administers their authority's users:
/// the Users entry of the menu shows only then.
pub(crate) fn administers(official: &Official) -> bool {
    official
        .access
        .get(ALL_AREAS)
        .is_some_and(|roles| roles.contains(&Role::AuthorityAdministrator))
}

/// The field a refusal belongs to and the message that says what to do.
fn refusal_message(refusal: UserRefusal) -> (&'static str, &'static str) {
    match refusal {
        UserRefusal::DuplicateLogin => ("login", "users-error-duplicate-login"),
        UserRefusal::BadLogin => ("login", "users-error-login"),
        UserRefusal::BadName => ("name", "users-error-name"),
        UserRefusal::BadEmail => ("email", "users-error-email"),
        UserRefusal::WeakPassword => ("password", "users-error-password"),
        UserRefusal::BadRoles => (ROLES_FIELD, "users-error-roles"),
        UserRefusal::OwnAccount => ("user-actions", "users-error-own-account"),
    }
}

fn refusal_error(ctx: &Ctx, refusal: UserRefusal) -> FieldError {
    let (field, message) = refusal_message(refusal);
    let message = if refusal == UserRefusal::WeakPassword {
        ctx.t.count(message, "min", MIN_PASSWORD_CHARS)
    } else {
        ctx.t.get(message)
    };
    FieldError::named(field, message)
}

/// The label of an area in the reader's language.
fn area_label(state: &AppState, ctx: &Ctx, key: &str) -> String {
    if key == ALL_AREAS {
        return ctx.t.get("profile-every-area");
    }
    let language = ctx.t.language();
    key.parse::<AreaKey>()
        .ok()
        .and_then(|k| {
            state
                .catalogue
                .area(&k)
                .map(|a| a.label.get(language).to_owned())
        })
        .unwrap_or_else(|| key.to_owned())
}

/// The authority's name in the reader's language where it has one.
fn authority_name(ctx: &Ctx, names: &BTreeMap<Language, String>) -> (String, &'static str) {
    let language = ctx.t.language();
    names
        .get_key_value(&language)
        .or_else(|| names.iter().next())
        .map_or((String::new(), language.tag()), |(l, n)| {
            (n.clone(), l.tag())
        })
}

/// One user as the table lists them.
struct UserRow {
    id: String,
    name: String,
    login: String,
    email: String,
    /// Area label → role labels.
    roles: Vec<(String, Vec<String>)>,
    active: bool,
    last_sign_in: Option<String>,
}

fn user_row(state: &AppState, ctx: &Ctx, user: &ManagedUser) -> UserRow {
    UserRow {
        id: user.id.to_string(),
        name: user.name.clone(),
        login: user.login.clone(),
        email: user.email.clone(),
        roles: user
            .access
            .iter()
            .filter(|(_, roles)| !roles.is_empty())
            .map(|(area, roles)| {
                (
                    area_label(state, ctx, area),
                    roles.iter().map(|r| ctx.t.get(role_message(*r))).collect(),
                )
            })
            .collect(),
        active: user.active,
        last_sign_in: user.last_sign_in.map(when),
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct ListTemplate {
    c: Chrome,
    authority: String,
    authority_lang: &'static str,
    /// Messages about areas lacking a substitute.
    gaps: Vec<String>,
    users: Vec<UserRow>,
    inactive: Vec<UserRow>,
    days: usize,
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
    name: Option<String>,
}

/// The users of the administrator's authority.
async fn authority_users(
    state: &AppState,
    official: &Official,
) -> Result<AuthorityUsers, WebError> {
    if !administers(official) {
        return Err(WebError::Forbidden(
            "only local data administrators manage the users of their authority".into(),
        ));
    }
    Ok(state.node.authority_users(official.id).await?)
}

async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let found = authority_users(&state, &official).await?;
    let name = done.name.unwrap_or_default();
    let notice = match done.done.as_deref() {
        Some("added") => Some(ctx.t.with("users-added", "name", &name)),
        Some("deactivated") => Some(ctx.t.with("users-deactivated-notice", "name", &name)),
        _ => None,
    };
    let (authority, authority_lang) = authority_name(&ctx, &found.authority_names);
    let gaps = found
        .gaps
        .iter()
        .map(|gap| {
            let id = if gap.handlers == 0 {
                "users-gap-none"
            } else {
                "users-gap-one"
            };
            ctx.t
                .with(id, "area", &area_label(&state, &ctx, gap.area.as_str()))
        })
        .collect();
    let inactive = found
        .inactive
        .iter()
        .filter_map(|id| found.users.iter().find(|u| u.id == *id))
        .map(|u| user_row(&state, &ctx, u))
        .collect();
    let users = found
        .users
        .iter()
        .map(|u| user_row(&state, &ctx, u))
        .collect();
    let c = Chrome::new(&state, &ctx, "users", ctx.t.get("users-title")).notice(notice);
    Ok(render(
        &ListTemplate {
            c,
            authority,
            authority_lang,
            gaps,
            users,
            inactive,
            days: INACTIVE_DAYS as usize,
        },
        StatusCode::OK,
    ))
}

/// One checkbox of a roles form.
struct RoleBox {
    /// `area:role`, the value sent.
    value: String,
    /// The checkbox's id.
    id: String,
    label: String,
    checked: bool,
}

/// The roles of one area (or of every area) as checkboxes.
struct RoleGroup {
    legend: String,
    boxes: Vec<RoleBox>,
}

/// The roles form: every area of the authority with its roles, then the
/// roles held for every area; the first checkbox has the id the error
/// summary leads to.
fn role_groups(
    state: &AppState,
    ctx: &Ctx,
    areas: &[AreaKey],
    access: &BTreeMap<String, BTreeSet<Role>>,
) -> Vec<RoleGroup> {
    let mut groups: Vec<(String, Vec<Role>)> = areas
        .iter()
        .map(|a| (a.as_str().to_owned(), AREA_ROLES.to_vec()))
        .collect();
    groups.push((ALL_AREAS.to_owned(), EVERY_AREA_ROLES.to_vec()));
    let mut first = true;
    groups
        .into_iter()
        .enumerate()
        .map(|(g, (area, roles))| RoleGroup {
            legend: area_label(state, ctx, &area),
            boxes: roles
                .into_iter()
                .map(|role| {
                    let id = if first {
                        ROLES_FIELD.to_owned()
                    } else {
                        format!("{ROLES_FIELD}-{g}-{role}")
                    };
                    first = false;
                    RoleBox {
                        value: format!("{area}:{role}"),
                        id,
                        label: ctx.t.get(role_message(role)),
                        checked: access.get(&area).is_some_and(|r| r.contains(&role)),
                    }
                })
                .collect(),
        })
        .collect()
}

/// The roles ticked in a sent form (`area:role` values); a value that names
/// no role is left out, and the node refuses areas it does not know.
fn ticked_roles(pairs: &[(String, String)]) -> BTreeMap<String, BTreeSet<Role>> {
    let mut access: BTreeMap<String, BTreeSet<Role>> = BTreeMap::new();
    for (name, value) in pairs {
        if name != "role" {
            continue;
        }
        let Some((area, role)) = value.rsplit_once(':') else {
            continue;
        };
        if let Ok(role) = role.parse::<Role>() {
            access.entry(area.to_owned()).or_default().insert(role);
        }
    }
    access
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The new-user form, as blank or as just sent back.
struct NewUserForm {
    login: String,
    name: String,
    email: String,
    language: &'static str,
    groups: Vec<RoleGroup>,
}

#[derive(Template)]
#[template(path = "user_new.html")]
struct NewTemplate {
    c: Chrome,
    errors: Vec<FieldError>,
    f: NewUserForm,
    min_chars: usize,
}

impl NewTemplate {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.errors, field)
    }
}

async fn new_form(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
) -> Result<Response, WebError> {
    let found = authority_users(&state, &official).await?;
    let f = NewUserForm {
        login: String::new(),
        name: String::new(),
        email: String::new(),
        language: ctx.t.language().tag(),
        groups: role_groups(&state, &ctx, &found.areas, &BTreeMap::new()),
    };
    Ok(new_page(&state, &ctx, f, vec![], StatusCode::OK))
}

fn new_page(
    state: &AppState,
    ctx: &Ctx,
    f: NewUserForm,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Response {
    let c = Chrome::new(state, ctx, "users", ctx.t.get("users-new-title")).back("/authority/users");
    render(
        &NewTemplate {
            c,
            errors,
            f,
            min_chars: MIN_PASSWORD_CHARS,
        },
        status,
    )
}

async fn add(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let found = authority_users(&state, &official).await?;
    let language = value(&pairs, "language")
        .parse::<Language>()
        .ok()
        .filter(|l| is_ui_language(*l))
        .unwrap_or(ctx.t.language());
    let access = ticked_roles(&pairs);
    let draft = UserDraft {
        login: value(&pairs, "login").trim().to_owned(),
        name: value(&pairs, "name").trim().to_owned(),
        email: value(&pairs, "email").trim().to_owned(),
        language,
        access: access.clone(),
        password: value(&pairs, "password").to_owned(),
    };
    let refusal = match state.node.add_user(official.id, draft.clone()).await {
        Ok(id) => {
            info!(admin = %official.id, user = %id, "user added");
            return Ok(Redirect::to(&format!(
                "/authority/users?done=added&name={}",
                super::encode(&draft.name)
            ))
            .into_response());
        }
        Err(NodeError::UserRefused { refusal, reason }) => {
            info!(admin = %official.id, reason = %reason, "user not added: the node refused the form");
            refusal
        }
        Err(err) => return Err(err.into()),
    };
    let f = NewUserForm {
        login: draft.login,
        name: draft.name,
        email: draft.email,
        language: language.tag(),
        groups: role_groups(&state, &ctx, &found.areas, &access),
    };
    Ok(new_page(
        &state,
        &ctx,
        f,
        vec![refusal_error(&ctx, refusal)],
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserTemplate {
    c: Chrome,
    errors: Vec<FieldError>,
    u: UserRow,
    groups: Vec<RoleGroup>,
    own: bool,
    min_chars: usize,
}

impl UserTemplate {
    fn error_for(&self, field: &str) -> Option<&str> {
        super::error_for(&self.errors, field)
    }
}

/// The user `id` of the administrator's authority, and the authority's
/// users; another authority's user is forbidden.
async fn managed(
    state: &AppState,
    official: &Official,
    id: &str,
) -> Result<(ManagedUser, AuthorityUsers), WebError> {
    let id: UserId = id.parse().map_err(|_| WebError::NotFound)?;
    let found = authority_users(state, official).await?;
    let user = found
        .users
        .iter()
        .find(|u| u.id == id)
        .cloned()
        .ok_or_else(|| WebError::Forbidden("not a user of your authority".into()))?;
    Ok((user, found))
}

async fn user_page_with(
    state: &AppState,
    ctx: &Ctx,
    official: &Official,
    id: &str,
    errors: Vec<FieldError>,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let (user, found) = managed(state, official, id).await?;
    let c = Chrome::new(state, ctx, "users", user.name.clone())
        .back("/authority/users")
        .notice(notice);
    Ok(render(
        &UserTemplate {
            c,
            errors,
            groups: role_groups(state, ctx, &found.areas, &user.access),
            own: user.id == official.id,
            u: user_row(state, ctx, &user),
            min_chars: MIN_PASSWORD_CHARS,
        },
        status,
    ))
}

async fn user_page(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let notice = match done.done.as_deref() {
        Some("roles") => Some("users-roles-saved"),
        Some("reactivated") => Some("users-reactivated-notice"),
        Some("deactivated") => Some("users-deactivated-notice"),
        Some("password") => Some("users-password-set"),
        _ => None,
    };
    let name = match notice {
        Some(_) => managed(&state, &official, &id).await?.0.name,
        None => String::new(),
    };
    let notice = notice.map(|message| ctx.t.with(message, "name", &name));
    user_page_with(&state, &ctx, &official, &id, vec![], notice, StatusCode::OK).await
}

/// After a change to a user: their page with the confirmation, or the
/// page with the node's refusal.
async fn after(
    state: &AppState,
    ctx: &Ctx,
    official: &Official,
    id: &str,
    result: Result<(), NodeError>,
    done: &str,
) -> Result<Response, WebError> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/authority/users/{id}?done={done}")).into_response()),
        Err(NodeError::UserRefused { refusal, reason }) => {
            info!(admin = %official.id, user = %id, reason = %reason, "user not changed: the node refused the form");
            user_page_with(
                state,
                ctx,
                official,
                id,
                vec![refusal_error(ctx, refusal)],
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(err) => Err(err.into()),
    }
}

async fn set_roles(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (user, _) = managed(&state, &official, &id).await?;
    let result = state
        .node
        .set_user_roles(official.id, user.id, ticked_roles(&pairs))
        .await;
    after(&state, &ctx, &official, &id, result, "roles").await
}

async fn deactivate(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (user, _) = managed(&state, &official, &id).await?;
    let result = state
        .node
        .set_user_active(official.id, user.id, false)
        .await;
    // From the list of users who no longer sign in, back to that list.
    if result.is_ok() && value(&pairs, "back") == "list" {
        return Ok(Redirect::to(&format!(
            "/authority/users?done=deactivated&name={}",
            super::encode(&user.name)
        ))
        .into_response());
    }
    after(&state, &ctx, &official, &id, result, "deactivated").await
}

async fn reactivate(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let (user, _) = managed(&state, &official, &id).await?;
    let result = state.node.set_user_active(official.id, user.id, true).await;
    after(&state, &ctx, &official, &id, result, "reactivated").await
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Path(id): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let (user, _) = managed(&state, &official, &id).await?;
    let result = state
        .node
        .reset_password(official.id, user.id, &form.password)
        .await;
    after(&state, &ctx, &official, &id, result, "password").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(values: &[(&str, &str)]) -> Vec<(String, String)> {
        values
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn ticked_roles_are_grouped_by_area_and_unknown_roles_left_out() {
        let access = ticked_roles(&pairs(&[
            ("role", "professional-qualifications:request-handler"),
            ("role", "professional-qualifications:allocator"),
            ("role", "*:authority-administrator"),
            ("role", "services:juggler"),
            ("login", "x:request-handler"),
        ]));
        assert_eq!(
            access,
            BTreeMap::from([
                (
                    "professional-qualifications".to_owned(),
                    BTreeSet::from([Role::RequestHandler, Role::Allocator])
                ),
                (
                    ALL_AREAS.to_owned(),
                    BTreeSet::from([Role::AuthorityAdministrator])
                ),
            ])
        );
    }

    #[test]
    fn each_refusal_names_a_field_of_the_form() {
        assert_eq!(refusal_message(UserRefusal::DuplicateLogin).0, "login");
        assert_eq!(refusal_message(UserRefusal::WeakPassword).0, "password");
        assert_eq!(refusal_message(UserRefusal::BadRoles).0, ROLES_FIELD);
    }
}
