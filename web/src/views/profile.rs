//! My profile: the user's authority, areas, roles and rights, language,
//! email notifications of new tasks, API tokens, and password change.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use imi_protocol::{AreaKey, Language, Role, Timestamp};
use serde::Deserialize;
use tracing::info;

use super::{Chrome, FieldError, render, when};
use crate::context::{AppState, Ctx, SignedIn};
use crate::error::WebError;
use crate::i18n::is_ui_language;
use crate::interface::{ApiTokenView, NewApiToken, NodeError, Official, TaskEmailChoice};

/// The shortest password the node accepts (its policy decides; this only
/// feeds the hint).
const MIN_PASSWORD_CHARS: usize = 12;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/profile", get(page))
        .route("/profile/language", post(set_language))
        .route("/profile/notifications", post(set_notifications))
        .route("/profile/password", post(change_password))
        .route("/profile/tokens", post(create_token))
        .route("/profile/tokens/{id}/revoke", post(revoke_token))
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

/// The choices of task emails, as the node names them, with their labels:
/// the order the form offers them in.
const TASK_EMAIL_CHOICES: [(&str, &str); 3] = [
    ("each-task", "profile-notify-each-task"),
    ("daily-summary", "profile-notify-daily-summary"),
    ("never", "profile-notify-never"),
];

/// The id of the radio group's first choice, where the error summary
/// leads.
const CHOICE_FIELD: &str = "task-emails";
/// The id of the address field.
const ADDRESS_FIELD: &str = "task-email-address";
/// What to do when no known choice was sent.
const CHOOSE_MESSAGE: &str = "profile-notify-choose";
/// What to do when the address is not one.
const BAD_ADDRESS_MESSAGE: &str = "profile-notify-bad-address";

/// The id of the token name field.
const TOKEN_NAME_FIELD: &str = "token-name";
/// The id of the token validity field.
const TOKEN_DAYS_FIELD: &str = "token-days";
/// What to do when the name is empty or too long.
const BAD_TOKEN_NAME_MESSAGE: &str = "profile-tokens-bad-name";
/// What to do when the validity is not a number of days the node takes.
const BAD_TOKEN_DAYS_MESSAGE: &str = "profile-tokens-bad-days";
/// What to do when the user holds as many tokens as allowed.
const TOO_MANY_TOKENS_MESSAGE: &str = "profile-tokens-too-many";
/// Longest token name, in characters (the node checks again).
const MAX_TOKEN_NAME_CHARS: usize = 100;
/// Longest validity of a token, in days (the node checks again).
const MAX_TOKEN_DAYS: u64 = 366;
/// The validity the form proposes, in days.
const DEFAULT_TOKEN_DAYS: &str = "90";

/// The messages this module names by a key, for the test that every
/// message exists.
#[cfg(test)]
pub(super) fn message_ids() -> Vec<&'static str> {
    let mut ids: Vec<&str> = TASK_EMAIL_CHOICES.iter().map(|(_, m)| *m).collect();
    ids.extend([
        CHOOSE_MESSAGE,
        BAD_ADDRESS_MESSAGE,
        BAD_TOKEN_NAME_MESSAGE,
        BAD_TOKEN_DAYS_MESSAGE,
        TOO_MANY_TOKENS_MESSAGE,
    ]);
    ids
}

/// One of the user's API tokens, as the list shows it.
struct TokenRow {
    id: String,
    name: String,
    created: String,
    expires: String,
    last_used: Option<String>,
}

impl TokenRow {
    fn new(token: ApiTokenView) -> TokenRow {
        TokenRow {
            id: token.id,
            name: token.name,
            created: when(token.created),
            expires: when(token.expires),
            last_used: token.last_used.map(when),
        }
    }
}

/// A token just created: its secret is on this page only.
struct CreatedToken {
    name: String,
    secret: String,
    expires: String,
}

/// The API tokens section: the list, the creation form as stored or as
/// just sent back, and what was just done.
struct TokensForm {
    rows: Vec<TokenRow>,
    name: String,
    days: String,
    created: Option<CreatedToken>,
    revoked: bool,
}

impl TokensForm {
    fn blank() -> TokensForm {
        TokensForm {
            rows: vec![],
            name: String::new(),
            days: DEFAULT_TOKEN_DAYS.to_owned(),
            created: None,
            revoked: false,
        }
    }
}

/// One radio button of the task emails choice.
struct NotifyChoice {
    /// The node's name of the choice.
    value: &'static str,
    /// Its label in the reader's language.
    label: String,
    /// The radio's id.
    id: String,
    /// Shown as chosen.
    checked: bool,
}

/// The email notifications form, as stored or as just sent back.
struct NotifyForm {
    /// The choices, in order.
    choices: Vec<NotifyChoice>,
    /// The address as written (empty: the account's).
    address: String,
    /// The account's address, used when `address` is empty.
    account_email: String,
}

impl NotifyForm {
    fn new(ctx: &Ctx, official: &Official, chosen: Option<&str>, address: &str) -> NotifyForm {
        NotifyForm {
            choices: TASK_EMAIL_CHOICES
                .iter()
                .enumerate()
                .map(|(i, (value, message))| NotifyChoice {
                    value,
                    label: ctx.t.get(message),
                    id: if i == 0 {
                        CHOICE_FIELD.to_owned()
                    } else {
                        format!("{CHOICE_FIELD}-{value}")
                    },
                    checked: chosen == Some(*value),
                })
                .collect(),
            address: address.to_owned(),
            account_email: official.email.clone(),
        }
    }

    /// The form showing what the node has stored.
    fn stored(ctx: &Ctx, official: &Official, stored: &TaskEmailChoice) -> NotifyForm {
        NotifyForm::new(
            ctx,
            official,
            Some(stored.task_emails.as_str()),
            stored.address.as_deref().unwrap_or(""),
        )
    }
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfileTemplate {
    c: Chrome,
    p: ProfileView,
    errors: Vec<FieldError>,
    min_chars: usize,
    notify: NotifyForm,
    tokens: TokensForm,
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

async fn profile_page(
    state: &AppState,
    ctx: &Ctx,
    official: &Official,
    errors: Vec<FieldError>,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    profile_page_with(
        state,
        ctx,
        official,
        errors,
        notice,
        status,
        None,
        TokensForm::blank(),
    )
    .await
}

/// The page, with the notifications form as sent back (`None`: as stored)
/// and the tokens section's form; the token list is read from the node.
#[allow(clippy::too_many_arguments)]
async fn profile_page_with(
    state: &AppState,
    ctx: &Ctx,
    official: &Official,
    errors: Vec<FieldError>,
    notice: Option<String>,
    status: StatusCode,
    notify: Option<NotifyForm>,
    mut tokens: TokensForm,
) -> Result<Response, WebError> {
    let notify = match notify {
        Some(notify) => notify,
        None => {
            let stored = state.node.task_emails(official.id).await?;
            NotifyForm::stored(ctx, official, &stored)
        }
    };
    tokens.rows = state
        .node
        .api_tokens(official.id)
        .await?
        .into_iter()
        .map(TokenRow::new)
        .collect();
    let c = Chrome::new(state, ctx, "profile", ctx.t.get("profile-title")).notice(notice);
    Ok(render(
        &ProfileTemplate {
            c,
            p: view(state, ctx, official),
            errors,
            min_chars: MIN_PASSWORD_CHARS,
            notify,
            tokens,
        },
        status,
    ))
}

async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let notice = match done.done.as_deref() {
        Some("language") => Some(ctx.t.get("profile-language-saved")),
        Some("password") => Some(ctx.t.get("password-changed")),
        Some("notifications") => Some(ctx.t.get("profile-notify-saved")),
        _ => None,
    };
    // Said inside the tokens section, which htmx swaps after a revocation.
    let tokens = TokensForm {
        revoked: done.done.as_deref() == Some("token-revoked"),
        ..TokensForm::blank()
    };
    profile_page_with(
        &state,
        &ctx,
        &official,
        vec![],
        notice,
        StatusCode::OK,
        None,
        tokens,
    )
    .await
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
struct NotificationsForm {
    #[serde(default)]
    task_emails: String,
    #[serde(default)]
    address: String,
}

/// What is wrong with a sent notifications form: the fields in error and
/// the message ids that say what to do.
fn check_notifications(form: &NotificationsForm) -> Vec<(&'static str, &'static str)> {
    let mut wrong = vec![];
    if !TASK_EMAIL_CHOICES
        .iter()
        .any(|(value, _)| *value == form.task_emails)
    {
        wrong.push((CHOICE_FIELD, CHOOSE_MESSAGE));
    }
    let address = form.address.trim();
    if !address.is_empty() && !looks_like_email(address) {
        wrong.push((ADDRESS_FIELD, BAD_ADDRESS_MESSAGE));
    }
    wrong
}

/// `name@example.org`: one `@` with something before it, a dot inside the
/// domain, no spaces, at most 200 characters. The node checks again.
fn looks_like_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    address.chars().count() <= 200
        && !address.chars().any(char::is_whitespace)
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

async fn set_notifications(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Form(form): Form<NotificationsForm>,
) -> Result<Response, WebError> {
    let mut wrong = check_notifications(&form);
    if wrong.is_empty() {
        let address = Some(form.address.trim()).filter(|a| !a.is_empty());
        match state
            .node
            .set_task_emails(official.id, &form.task_emails, address)
            .await
        {
            Ok(()) => {
                info!(user = %official.id, task_emails = %form.task_emails, own_address = address.is_some(), "email notifications saved in the web UI");
                return Ok(Redirect::to("/profile?done=notifications").into_response());
            }
            // The choice was checked above: what the node refuses is the
            // address.
            Err(NodeError::Invalid(reason)) => {
                info!(user = %official.id, reason = %reason, "notification address refused by the node");
                wrong.push((ADDRESS_FIELD, BAD_ADDRESS_MESSAGE));
            }
            Err(err) => return Err(err.into()),
        }
    }
    let fields: Vec<&str> = wrong.iter().map(|(field, _)| *field).collect();
    info!(user = %official.id, fields = ?fields, "email notifications not saved: the form has errors");
    let errors = wrong
        .into_iter()
        .map(|(field, message)| FieldError::named(field, ctx.t.get(message)))
        .collect();
    let notify = NotifyForm::new(
        &ctx,
        &official,
        Some(form.task_emails.as_str()),
        form.address.trim(),
    );
    profile_page_with(
        &state,
        &ctx,
        &official,
        errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(notify),
        TokensForm::blank(),
    )
    .await
}

#[derive(Debug, Deserialize)]
struct TokenCreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    days: String,
}

/// What is wrong with a sent token form (fields in error and the message
/// ids that say what to do), or the validity in days.
fn check_token_form(form: &TokenCreateForm) -> Result<u64, Vec<(&'static str, &'static str)>> {
    let mut wrong = vec![];
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS {
        wrong.push((TOKEN_NAME_FIELD, BAD_TOKEN_NAME_MESSAGE));
    }
    let days = form
        .days
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|days| (1..=MAX_TOKEN_DAYS).contains(days));
    if days.is_none() {
        wrong.push((TOKEN_DAYS_FIELD, BAD_TOKEN_DAYS_MESSAGE));
    }
    match days {
        Some(days) if wrong.is_empty() => Ok(days),
        _ => Err(wrong),
    }
}

async fn create_token(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(official): SignedIn,
    Form(form): Form<TokenCreateForm>,
) -> Result<Response, WebError> {
    let wrong = match check_token_form(&form) {
        Err(wrong) => wrong,
        Ok(days) => {
            let expires = Timestamp::from_system_time(std::time::SystemTime::now()).plus_days(days);
            match state
                .node
                .create_api_token(official.id, form.name.trim(), expires)
                .await
            {
                Ok(NewApiToken { token, secret }) => {
                    info!(user = %official.id, token = %token.id, days, "api token created in the web UI");
                    let tokens = TokensForm {
                        created: Some(CreatedToken {
                            name: token.name,
                            secret,
                            expires: when(token.expires),
                        }),
                        ..TokensForm::blank()
                    };
                    let mut page = profile_page_with(
                        &state,
                        &ctx,
                        &official,
                        vec![],
                        None,
                        StatusCode::OK,
                        None,
                        tokens,
                    )
                    .await?;
                    // The secret is on this page only: no cache keeps it.
                    page.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    return Ok(page);
                }
                // Name and validity were checked above: what the node
                // refuses is one token too many.
                Err(NodeError::Invalid(reason)) => {
                    info!(user = %official.id, reason = %reason, "api token refused by the node");
                    vec![(TOKEN_NAME_FIELD, TOO_MANY_TOKENS_MESSAGE)]
                }
                Err(err) => return Err(err.into()),
            }
        }
    };
    let fields: Vec<&str> = wrong.iter().map(|(field, _)| *field).collect();
    info!(user = %official.id, fields = ?fields, "api token not created: the form has errors");
    let errors = wrong
        .into_iter()
        .map(|(field, message)| FieldError::named(field, ctx.t.get(message)))
        .collect();
    let tokens = TokensForm {
        name: form.name.trim().to_owned(),
        days: form.days.trim().to_owned(),
        ..TokensForm::blank()
    };
    profile_page_with(
        &state,
        &ctx,
        &official,
        errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        tokens,
    )
    .await
}

async fn revoke_token(
    State(state): State<AppState>,
    SignedIn(official): SignedIn,
    Path(id): Path<String>,
) -> Result<Redirect, WebError> {
    state.node.revoke_api_token(official.id, &id).await?;
    info!(user = %official.id, token = %id, "api token revoked in the web UI");
    Ok(Redirect::to("/profile?done=token-revoked#api-tokens"))
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
    profile_page(
        &state,
        &ctx,
        &official,
        errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_form(name: &str, days: &str) -> TokenCreateForm {
        TokenCreateForm {
            name: name.into(),
            days: days.into(),
        }
    }

    #[test]
    fn a_token_needs_a_name_and_a_validity_of_1_to_366_days() {
        assert_eq!(check_token_form(&token_form(" register ", "90")), Ok(90));
        assert_eq!(check_token_form(&token_form("r", " 366 ")), Ok(366));
        assert_eq!(check_token_form(&token_form(&"é".repeat(100), "1")), Ok(1));
        let name = (TOKEN_NAME_FIELD, BAD_TOKEN_NAME_MESSAGE);
        let days = (TOKEN_DAYS_FIELD, BAD_TOKEN_DAYS_MESSAGE);
        assert_eq!(check_token_form(&token_form("  ", "90")), Err(vec![name]));
        assert_eq!(
            check_token_form(&token_form(&"n".repeat(101), "90")),
            Err(vec![name])
        );
        for bad in ["", "0", "367", "-1", "ninety", "9.5"] {
            assert_eq!(
                check_token_form(&token_form("register", bad)),
                Err(vec![days]),
                "{bad}"
            );
        }
        assert_eq!(
            check_token_form(&token_form("", "0")),
            Err(vec![name, days])
        );
    }

    fn form(task_emails: &str, address: &str) -> NotificationsForm {
        NotificationsForm {
            task_emails: task_emails.into(),
            address: address.into(),
        }
    }

    #[test]
    fn a_known_choice_with_an_address_or_none_is_accepted() {
        for choice in ["each-task", "daily-summary", "never"] {
            assert_eq!(check_notifications(&form(choice, "")), [], "{choice}");
        }
        assert_eq!(
            check_notifications(&form("daily-summary", " aino.virtanen@valvira.fi ")),
            []
        );
    }

    #[test]
    fn an_unknown_choice_and_a_malformed_address_are_errors_of_their_fields() {
        assert_eq!(
            check_notifications(&form("weekly", "")),
            [(CHOICE_FIELD, CHOOSE_MESSAGE)]
        );
        assert_eq!(
            check_notifications(&form("", "aino@")),
            [
                (CHOICE_FIELD, CHOOSE_MESSAGE),
                (ADDRESS_FIELD, BAD_ADDRESS_MESSAGE)
            ]
        );
        for bad in [
            "aino",
            "@valvira.fi",
            "aino@valvira",
            "aino@@valvira.fi",
            "aino virtanen@valvira.fi",
            "aino@.valvira.fi",
            "aino@valvira.fi.",
        ] {
            assert_eq!(
                check_notifications(&form("never", bad)),
                [(ADDRESS_FIELD, BAD_ADDRESS_MESSAGE)],
                "{bad}"
            );
        }
        let long = format!("{}@valvira.fi", "a".repeat(200));
        assert_eq!(
            check_notifications(&form("never", &long)),
            [(ADDRESS_FIELD, BAD_ADDRESS_MESSAGE)]
        );
    }
}
