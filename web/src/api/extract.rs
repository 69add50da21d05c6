//! What every API request goes through: the bearer token and its user, the
//! request rate, and JSON and query input that fails with the field that
//! was wrong.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use tracing::info;

use super::ApiState;
use super::problem::ApiError;
use crate::interface::Official;

/// The request rate each user of the API may keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests at once above the rate.
    pub burst: u32,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            per_second: 20,
            burst: 100,
        }
    }
}

/// Token buckets per key (a user, or an address that sends bad tokens).
pub(crate) struct RateLimiter {
    limits: ApiLimits,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Buckets kept at most; full buckets are forgotten first.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    pub(crate) fn new(limits: ApiLimits) -> RateLimiter {
        RateLimiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; `Err(seconds)` to wait when
    /// it is empty.
    pub(crate) fn take(&self, key: &str) -> Result<(), u64> {
        let rate = f64::from(self.limits.per_second.max(1));
        let burst = f64::from(self.limits.burst.max(1));
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// Whether `key`'s bucket is empty, without taking from it.
    pub(crate) fn exhausted(&self, key: &str) -> bool {
        let rate = f64::from(self.limits.per_second.max(1));
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .get(key)
            .is_some_and(|(tokens, at)| tokens + now.duration_since(*at).as_secs_f64() * rate < 1.0)
    }
}

/// The user a request acts for, as their account is now.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Official);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))
    }
}

/// Checks the bearer token, its user and the user's request rate; a
/// client that sends bad tokens is slowed down by its address.
pub(crate) async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let failures = format!("address {address}");
    if state.limiter.exhausted(&failures) {
        return ApiError::RateLimited(1).into_response();
    }
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|s| s.trim().to_owned());
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return ApiError::Unauthorized("send Authorization: Bearer <token>".into()).into_response();
    };
    let official = match state.node.api_token_user(&secret).await {
        Ok(user) => state.node.official(user).await,
        Err(err) => Err(err),
    };
    let official = match official {
        Ok(official) => official,
        Err(err) => {
            let err = ApiError::from(err);
            if matches!(err, ApiError::Unauthorized(_)) {
                info!(address = %address, "API token refused");
                let _ = state.limiter.take(&failures);
            }
            return err.into_response();
        }
    };
    if let Err(seconds) = state.limiter.take(&format!("user {}", official.id)) {
        return ApiError::RateLimited(seconds).into_response();
    }
    request.extensions_mut().insert(Caller(official));
    next.run(request).await
}

/// A JSON body; a body that is not JSON, or does not fit, names the field.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge(super::MAX_STEP_BODY)
                } else {
                    ApiError::invalid("body", rejection.body_text())
                }
            })?;
        decode(&bytes).map(ApiJson)
    }
}

/// Decodes JSON, naming the field that does not fit.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let field = if path.is_empty() || path == "." {
            "body".to_owned()
        } else {
            path
        };
        ApiError::invalid(field, err.into_inner().to_string())
    })
}

/// Query parameters; ones that do not fit name the query.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|rejection: QueryRejection| {
                let text = rejection.body_text();
                let reason = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                // serde_urlencoded names the field first: `limit: invalid digit`.
                match reason.split_once(": ") {
                    Some((field, why)) if !field.contains(' ') => ApiError::invalid(field, why),
                    _ => ApiError::invalid("query", reason),
                }
            })
    }
}

/// The most a page of a list holds.
pub(crate) const MAX_LIMIT: usize = 100;

/// A page of a list: where it starts (an opaque cursor) and how long.
pub(crate) fn page(cursor: Option<&str>, limit: Option<usize>) -> Result<(usize, usize), ApiError> {
    let limit = limit.unwrap_or(20);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(
            "limit",
            format!("give a number from 1 to {MAX_LIMIT}"),
        ));
    }
    let offset = match cursor.filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| {
                ApiError::invalid("cursor", "not a cursor this API gave; start without one")
            })?,
    };
    Ok((offset, limit))
}

/// The cursor of the page after one that started at `offset`, if any.
pub(crate) fn next_cursor(offset: usize, limit: usize, total: usize) -> Option<String> {
    let next = offset.checked_add(limit)?;
    (next < total).then(|| URL_SAFE_NO_PAD.encode(format!("o:{next}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_past_the_burst_waits_and_others_do_not() {
        let limiter = RateLimiter::new(ApiLimits {
            per_second: 1,
            burst: 3,
        });
        for _ in 0..3 {
            assert_eq!(limiter.take("a"), Ok(()));
        }
        assert_eq!(limiter.take("a"), Err(1));
        assert!(limiter.exhausted("a"));
        assert_eq!(limiter.take("b"), Ok(()));
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let next = next_cursor(0, 20, 45).expect("a second page");
        assert_eq!(page(Some(&next), Some(20)), Ok((20, 20)));
        assert_eq!(next_cursor(40, 20, 45), None);
        assert!(matches!(
            page(Some("not-a-cursor"), None),
            Err(ApiError::Invalid { field, .. }) if field == "cursor"
        ));
        assert!(matches!(
            page(None, Some(0)),
            Err(ApiError::Invalid { field, .. }) if field == "limit"
        ));
    }
}
