//! Extractors whose failures are problem documents: a body or query that does
//! not fit gets a `request-invalid` / `query-invalid` naming the field, never
//! axum's plain-text rejection.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest body most endpoints take.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Largest deployment body (BPMN files, JSON-escaped).
pub const DEPLOY_LIMIT: usize = 16 * 1024 * 1024;

/// A JSON body of at most `LIMIT` bytes. An empty body reads as `{}`.
pub struct Body<T, const LIMIT: usize = BODY_LIMIT>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S> for Body<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(length) = request.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
            if length > LIMIT {
                return Err(ApiError::new("body-too-large", format!("the body is {length} bytes; this endpoint takes at most {LIMIT}")));
            }
        }
        let bytes = axum::body::to_bytes(request.into_body(), LIMIT)
            .await
            .map_err(|_| ApiError::new("body-too-large", format!("the body is over {LIMIT} bytes, the most this endpoint takes")))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(bytes).map(Body).map_err(|error| ApiError::new("request-invalid", format!("the body is not valid: {error}")))
    }
}

/// Query parameters. Unknown parameters are refused by the target type.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query).map(Params).map_err(|error| ApiError::new("query-invalid", format!("the query is not valid: {error}")))
    }
}

/// The header a client names its user in (until authentication says who it is).
pub const ACTOR_HEADER: &str = "x-baton-actor";
/// Longest actor name.
pub const MAX_ACTOR_BYTES: usize = 128;

/// Who makes the request: the `X-Baton-Actor` header, else `None` (the
/// handler falls back to a worker's name or `anonymous`).
pub struct Actor(pub Option<String>);

impl Actor {
    /// The actor's name, or `fallback` when the request named none.
    pub fn or(&self, fallback: Option<&str>) -> String {
        self.0.clone().or_else(|| fallback.map(str::to_string)).unwrap_or_else(|| "anonymous".to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(ACTOR_HEADER) else { return Ok(Actor(None)) };
        let name = value.to_str().map_err(|_| ApiError::new("request-invalid", "the X-Baton-Actor header is not visible ASCII"))?.trim();
        if name.is_empty() || name.len() > MAX_ACTOR_BYTES {
            return Err(ApiError::new("request-invalid", format!("the X-Baton-Actor header must be 1 to {MAX_ACTOR_BYTES} bytes")));
        }
        Ok(Actor(Some(name.to_string())))
    }
}
