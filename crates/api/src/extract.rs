//! Extractors whose failures are problem documents: a body or query that does
//! not fit gets a `request-invalid` / `query-invalid` naming the field, never
//! axum's plain-text rejection.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest body most endpoints take.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Deepest nesting of arrays and objects a JSON body (or a variables
/// document sent as text) may have. Baton keeps variables inside an
/// instance's state, a few levels further down, and reads it back with a
/// limit of 128 levels: a bound well under that on the way in means nothing
/// is committed that cannot be read.
pub const MAX_JSON_DEPTH: usize = 64;

/// How deep arrays and objects nest in the JSON text `bytes` (0 for a
/// scalar), found in one pass without parsing; brackets inside strings do
/// not count.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Refuses JSON text nested deeper than [`MAX_JSON_DEPTH`], naming how deep it is.
pub fn check_depth(what: &str, bytes: &[u8]) -> Result<(), String> {
    let depth = json_depth(bytes);
    if depth > MAX_JSON_DEPTH {
        return Err(format!("{what} nests arrays and objects {depth} levels deep; at most {MAX_JSON_DEPTH} are taken"));
    }
    Ok(())
}
/// Largest deployment body (BPMN files, JSON-escaped).
pub const DEPLOY_LIMIT: usize = 16 * 1024 * 1024;

/// A JSON body of at most `LIMIT` bytes. An empty body reads as `{}`.
pub struct Body<T, const LIMIT: usize = BODY_LIMIT>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S> for Body<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        // Only JSON: browsers send forms and text/plain across sites without asking first.
        let content_type = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let json = content_type
            .and_then(|value| value.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            let given = content_type.unwrap_or("none");
            return Err(ApiError::new(
                "unsupported-media-type",
                format!("a write takes Content-Type: application/json, not {given}"),
            ));
        }
        if let Some(length) = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        {
            if length > LIMIT {
                return Err(ApiError::new(
                    "body-too-large",
                    format!("the body is {length} bytes; this endpoint takes at most {LIMIT}"),
                ));
            }
        }
        let bytes = axum::body::to_bytes(request.into_body(), LIMIT)
            .await
            .map_err(|_| {
                ApiError::new(
                    "body-too-large",
                    format!("the body is over {LIMIT} bytes, the most this endpoint takes"),
                )
            })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        check_depth("the body", bytes).map_err(|why| ApiError::new("request-invalid", why))?;
        serde_json::from_slice(bytes).map(Body).map_err(|error| {
            ApiError::new("request-invalid", format!("the body is not valid: {error}"))
        })
    }
}

/// Query parameters. Unknown parameters are refused by the target type.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(Params)
            .map_err(|error| {
                ApiError::new("query-invalid", format!("the query is not valid: {error}"))
            })
    }
}

/// The principal the request's token stands for (`None` without authentication).
pub struct Caller(pub Option<crate::access::Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(
            parts.extensions.get::<crate::access::Principal>().cloned(),
        ))
    }
}

/// The header a client names its user in (until authentication says who it is).
pub const ACTOR_HEADER: &str = "x-baton-actor";
/// Longest actor name.
pub const MAX_ACTOR_BYTES: usize = 128;

/// Who makes the request: the principal, else the `X-Baton-Actor` header,
/// else `None` (the handler falls back to a worker's name or `anonymous`);
/// and the tenants it reaches, which every command it makes carries.
pub struct Actor {
    pub name: Option<String>,
    pub tenants: store::Tenants,
}

impl Actor {
    /// The actor's name, or `fallback` when the request named none.
    pub fn or(&self, fallback: Option<&str>) -> String {
        self.name
            .clone()
            .or_else(|| fallback.map(str::to_string))
            .unwrap_or_else(|| "anonymous".to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = parts.extensions.get::<crate::access::Principal>();
        let tenants = principal.and_then(|p| p.tenants.clone());
        let principal = principal.map(|p| p.name.clone());
        let Some(value) = parts.headers.get(ACTOR_HEADER) else {
            return Ok(Actor {
                name: principal,
                tenants,
            });
        };
        let bytes = value.as_bytes();
        let printable = bytes.iter().all(|b| (b' '..=b'~').contains(b));
        let padded = bytes.first() == Some(&b' ') || bytes.last() == Some(&b' ');
        if bytes.is_empty() || bytes.len() > MAX_ACTOR_BYTES || !printable || padded {
            return Err(ApiError::new(
                "request-invalid",
                format!("the X-Baton-Actor header must be 1 to {MAX_ACTOR_BYTES} printable ASCII characters, without spaces around them"),
            ));
        }
        // With authentication on, the actor is who the token says, whatever the client declares.
        Ok(Actor {
            name: principal.or_else(|| Some(String::from_utf8_lossy(bytes).into_owned())),
            tenants,
        })
    }
}

/// Whole numbers as JSON (and JSON Schema's `integer`) counts them: `5` and
/// `5.0` alike, refused when fractional or out of the field's range. For
/// `#[serde(deserialize_with = ...)]` on request fields.
pub mod whole {
    use serde::de::{Deserializer, Error};
    use serde::Deserialize;

    fn whole_of<'de, D: Deserializer<'de>>(number: serde_json::Number) -> Result<i128, D::Error> {
        if let Some(n) = number.as_i64() {
            return Ok(i128::from(n));
        }
        if let Some(n) = number.as_u64() {
            return Ok(i128::from(n));
        }
        match number.as_f64() {
            // Beyond 2^63 a float cannot name one whole number exactly.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i128),
            Some(f) if f.fract() == 0.0 => {
                Err(D::Error::custom(format!("{number} is out of range")))
            }
            _ => Err(D::Error::custom(format!("{number} is not a whole number"))),
        }
    }

    pub fn required<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let n = whole_of::<D>(serde_json::Number::deserialize(deserializer)?)?;
        T::try_from(n).map_err(|_| D::Error::custom(format!("{n} is out of range")))
    }

    pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<serde_json::Number>::deserialize(deserializer)? {
            Some(number) => {
                let n = whole_of::<D>(number)?;
                T::try_from(n)
                    .map(Some)
                    .map_err(|_| D::Error::custom(format!("{n} is out of range")))
            }
            None => Ok(None),
        }
    }
}
