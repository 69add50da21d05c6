//! `Idempotency-Key`: a client that retries a POST (after a timeout, a cut
//! connection) with the same key gets the first response again, and the
//! request is handled once.
//!
//! The node keeps each key of each user for 24 hours with a fingerprint of
//! the request (method, address, body) and, once handled, its response. A
//! retry with the same key and fingerprint replays the response
//! (`Idempotent-Replayed: true`); the same key for another request is
//! refused; a retry while the first is still being handled is told to wait.
//! A response the node could not give (5xx), or a method the address does
//! not take (405), releases the key, since the request had no effect.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tracing::warn;

use super::ApiState;
use super::extract::Caller;
use super::problem::ApiError;
use crate::interface::{IdempotencyClaim, KeptResponse};

/// The header.
pub(crate) const HEADER: &str = "idempotency-key";

/// Replays or records the response of a request that carries a key.
pub(crate) async fn replay(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    // POSTs only: PUT and DELETE are idempotent by themselves, and a key
    // read on them would refuse a method the address does not take as a
    // bad key instead of with 405.
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Ok(key) = key.to_str().map(str::to_owned) else {
        return ApiError::invalid("Idempotency-Key", "use visible ASCII characters only")
            .into_response();
    };
    let Some(Caller(official)) = request.extensions().get::<Caller>().cloned() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, super::MAX_STEP_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::TooLarge(super::MAX_STEP_BODY).into_response(),
    };
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(
        parts
            .uri
            .path_and_query()
            .map_or("", |p| p.as_str())
            .as_bytes(),
    );
    hash.update(b"\n");
    hash.update(&bytes);
    let fingerprint: [u8; 32] = hash.finalize().into();
    match state
        .node
        .claim_idempotency_key(official.id, &key, fingerprint)
        .await
    {
        Ok(IdempotencyClaim::Claimed) => {}
        Ok(IdempotencyClaim::InProgress) => return ApiError::KeyInProgress.into_response(),
        Ok(IdempotencyClaim::Mismatch) => return ApiError::KeyReused.into_response(),
        Ok(IdempotencyClaim::Replay(kept)) => return replayed(kept),
        Err(crate::interface::NodeError::Invalid(reason)) => {
            return ApiError::invalid("Idempotency-Key", reason).into_response();
        }
        Err(err) => return ApiError::from(err).into_response(),
    }
    // Handled apart from the connection: a client that hangs up does not
    // cancel the request half-way, and its response is kept for the retry.
    let node = std::sync::Arc::clone(&state.node);
    let handled = tokio::spawn(async move {
        let response = next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => bytes,
            Err(err) => {
                warn!(error = %err, "API response not read to keep for its idempotency key");
                let _ = node.keep_idempotent_response(official.id, &key, None).await;
                return ApiError::Unavailable(err.to_string()).into_response();
            }
        };
        // A request no operation took (a method the address does not
        // take) did nothing either: its key stays free.
        let taken =
            !parts.status.is_server_error() && parts.status != StatusCode::METHOD_NOT_ALLOWED;
        let kept = taken.then(|| KeptResponse {
            status: parts.status.as_u16(),
            location: parts
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: bytes.to_vec(),
        });
        if let Err(err) = node.keep_idempotent_response(official.id, &key, kept).await {
            warn!(error = %err, "the response of an idempotency key was not kept");
        }
        Response::from_parts(parts, Body::from(bytes))
    });
    handled
        .await
        .unwrap_or_else(|err| ApiError::Unavailable(err.to_string()).into_response())
}

fn replayed(kept: KeptResponse) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let kind = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut response = (status, [(header::CONTENT_TYPE, kind)], kept.body).into_response();
    let headers = response.headers_mut();
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Some(location) = kept.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}
