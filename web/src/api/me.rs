//! The token's user through the API: profile, language, email
//! notifications, password, and their API tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use imi_protocol::{Language, Party, Timestamp};

use super::ApiState;
use super::cases::party_out;
use super::extract::{ApiJson, Caller};
use super::model::{
    LanguageIn, MeOut, NewTokenIn, NewTokenOut, NodeStatusOut, NotificationsIo, PasswordIn,
    PeerOut, RefusedOut, TokenOut,
};
use super::problem::{ApiError, Problem};
use crate::interface::{ApiTokenView, NodeError, PartyName};

/// The token's user, as their account is now.
#[utoipa::path(
    get,
    path = "/me",
    tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = MeOut),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn profile(
    State(state): State<ApiState>,
    Caller(official): Caller,
) -> Json<MeOut> {
    let name = official
        .authority_names
        .get(&official.language)
        .or_else(|| official.authority_names.values().next())
        .cloned()
        .unwrap_or_else(|| official.authority.to_string());
    Json(MeOut {
        id: official.id.to_string(),
        login: official.login.clone(),
        name: official.name.clone(),
        email: official.email.clone(),
        language: official.language.tag().to_owned(),
        authority: party_out(&PartyName {
            party: Party {
                country: state.info.country,
                authority: official.authority,
            },
            name,
            language: official.language,
        }),
        areas: official
            .areas
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        roles: official
            .access
            .iter()
            .map(|(area, roles)| {
                (
                    area.clone(),
                    roles.iter().map(|r| r.as_str().to_owned()).collect(),
                )
            })
            .collect(),
        password_set: official.password_set.to_string(),
    })
}

/// Sets the language of the user's profile.
#[utoipa::path(
    put,
    path = "/me/language",
    tag = "profile",
    request_body = LanguageIn,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Set"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a language", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn set_language(
    State(state): State<ApiState>,
    Caller(official): Caller,
    ApiJson(input): ApiJson<LanguageIn>,
) -> Result<StatusCode, ApiError> {
    let language: Language = input.language.trim().parse().map_err(|_| {
        ApiError::invalid(
            "language",
            format!("{:?} is not one of the 24 languages", input.language),
        )
    })?;
    state.node.set_language(official.id, language).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's email notifications of new tasks.
#[utoipa::path(
    get,
    path = "/me/notifications",
    tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's choice", body = NotificationsIo),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn notifications(
    State(state): State<ApiState>,
    Caller(official): Caller,
) -> Result<Json<NotificationsIo>, ApiError> {
    let choice = state.node.task_emails(official.id).await?;
    Ok(Json(NotificationsIo {
        task_emails: choice.task_emails,
        address: choice.address,
    }))
}

/// Sets the user's email notifications of new tasks.
#[utoipa::path(
    put,
    path = "/me/notifications",
    tag = "profile",
    request_body = NotificationsIo,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Set"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a choice, or not an address", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn set_notifications(
    State(state): State<ApiState>,
    Caller(official): Caller,
    ApiJson(input): ApiJson<NotificationsIo>,
) -> Result<StatusCode, ApiError> {
    let address = input
        .address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    state
        .node
        .set_task_emails(official.id, input.task_emails.trim(), address)
        .await
        .map_err(|err| match err {
            NodeError::Invalid(reason) => ApiError::invalid("task_emails", reason),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the user's own password after checking the current one.
#[utoipa::path(
    post,
    path = "/me/password",
    tag = "profile",
    request_body = PasswordIn,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The current password is wrong, or the new one too weak", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn change_password(
    State(state): State<ApiState>,
    Caller(official): Caller,
    ApiJson(input): ApiJson<PasswordIn>,
) -> Result<StatusCode, ApiError> {
    state
        .node
        .change_password(official.id, &input.current, &input.new)
        .await
        .map_err(|err| match err {
            NodeError::WrongCredentials => {
                ApiError::invalid("current", "the current password is wrong")
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

fn token_out(token: ApiTokenView) -> TokenOut {
    TokenOut {
        id: token.id,
        name: token.name,
        created: token.created.to_string(),
        expires: token.expires.to_string(),
        last_used: token.last_used.map(|t| t.to_string()),
    }
}

/// The user's API tokens, newest first.
#[utoipa::path(
    get,
    path = "/me/tokens",
    tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens, without their secrets", body = Vec<TokenOut>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn tokens(
    State(state): State<ApiState>,
    Caller(official): Caller,
) -> Result<Json<Vec<TokenOut>>, ApiError> {
    let tokens = state.node.api_tokens(official.id).await?;
    Ok(Json(tokens.into_iter().map(token_out).collect()))
}

/// Creates an API token for the user; its secret is shown this once.
#[utoipa::path(
    post,
    path = "/me/tokens",
    tag = "profile",
    request_body = NewTokenIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The token and its secret", body = NewTokenOut),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is not valid, or too many tokens", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn create_token(
    State(state): State<ApiState>,
    Caller(official): Caller,
    ApiJson(input): ApiJson<NewTokenIn>,
) -> Result<(StatusCode, Json<NewTokenOut>), ApiError> {
    let days = input.days.unwrap_or(90);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid("days", "give 1 to 366 days"));
    }
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let created = state
        .node
        .create_api_token(official.id, &input.name, now.plus_days(u64::from(days)))
        .await
        .map_err(|err| match err {
            NodeError::Invalid(reason) => ApiError::invalid("name", reason),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(NewTokenOut {
            token: token_out(created.token),
            secret: created.secret,
        }),
    ))
}

/// Revokes one of the user's tokens, at once.
#[utoipa::path(
    delete,
    path = "/me/tokens/{id}",
    tag = "profile",
    params(("id" = String, Path, description = "The token's id (not its secret)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such token of the user", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn revoke_token(
    State(state): State<ApiState>,
    Caller(official): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.node.revoke_api_token(official.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The node's status, for its national coordinators.
#[utoipa::path(
    get,
    path = "/status",
    tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The nodes linked now, admissions refused, what the store holds", body = NodeStatusOut),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The user is not a national coordinator", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn node_status(
    State(state): State<ApiState>,
    Caller(official): Caller,
) -> Result<Json<NodeStatusOut>, ApiError> {
    let status = state.node.node_status(official.id).await?;
    Ok(Json(NodeStatusOut {
        catalogue_version: status.catalogue_version,
        store_bytes: status.store_bytes,
        peers: status
            .peers
            .into_iter()
            .map(|p| PeerOut {
                node: p.node,
                certificate_until: p.certificate_until.to_string(),
            })
            .collect(),
        refused: status
            .refused
            .into_iter()
            .map(|(peer, reason)| RefusedOut { peer, reason })
            .collect(),
        cases: status.cases.into_iter().collect(),
        sent: status.sent.into_iter().collect(),
        rejections: status.rejections.into_iter().collect(),
        received: status.received,
        outbox: status.outbox,
    }))
}
