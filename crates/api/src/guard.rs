//! The door every request passes before a handler: the checks that keep a
//! browser from being turned against the server, in one place.
//!
//! * A server bound to a loopback address answers only `Host` values that
//!   name loopback, so DNS rebinding cannot reach it from a web page.
//! * A request from a browser page of another origin (its `Origin` header)
//!   is refused unless that origin is configured (`--cors-origin`), in which
//!   case the CORS headers allow it.
//! * A write (`POST`) must say `Content-Type: application/json`: an HTML form
//!   or a `text/plain` fetch, which browsers send cross-site without asking,
//!   is refused before its handler runs (by the `Body` extractor every write
//!   takes, so that a method a route does not take is still a 405).
//! * With tokens on, every route but the public ones needs a bearer token
//!   (401 otherwise), and the token's roles must allow the route as
//!   [`crate::access::ACCESS`] says (403 otherwise). The principal goes to
//!   the handlers in the request's extensions.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::{access, Access, Principal, Refusal, Tokens};
use crate::error::ApiError;

/// What the door lets in.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Answer only `Host` values that name loopback (the server listens on loopback).
    pub loopback_hosts_only: bool,
    /// Origins whose pages may call the API (`https://console.example.org`).
    pub allowed_origins: Vec<String>,
    /// With `Some`, every route but the public ones needs one of these tokens.
    pub tokens: Option<Arc<Tokens>>,
    /// With `Some`, every route but the public ones needs a JWT from this issuer.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// What one client may do per second and at once.
    pub limits: crate::limits::LimitSettings,
}

impl Security {
    /// The defaults for a server listening on `address`.
    pub fn for_listener(address: std::net::SocketAddr) -> Security {
        Security { loopback_hosts_only: address.ip().is_loopback(), ..Security::default() }
    }

    /// Whether requests need a token or a JWT (and so carry a principal).
    pub fn authenticates(&self) -> bool {
        self.tokens.is_some() || self.oidc.is_some()
    }
}

/// The door's state: its rules and the clock tokens expire by.
#[derive(Clone)]
pub struct Door {
    pub security: Arc<Security>,
    pub clock: Arc<dyn runtime::Clock>,
}


/// Whether `host` (a `Host` header: name or address, maybe with a port) names this machine's loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1]:7444
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(name, _)| name),
    };
    // Compared without a lowercase copy: every request passes here.
    let name = name.trim_end_matches('.');
    let (bytes, suffix) = (name.as_bytes(), b".localhost");
    bytes.eq_ignore_ascii_case(b"localhost")
        || bytes.len() >= suffix.len() && bytes[bytes.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a request against `security`; answers preflights for allowed origins.
pub async fn door(door: &Door, mut request: Request, inner: impl AsyncFnOnce(Request) -> Response) -> Response {
    let security = &door.security;
    let headers = request.headers();
    let host = header(headers, header::HOST).or_else(|| request.uri().authority().map(|a| a.as_str()));
    if security.loopback_hosts_only {
        match host {
            Some(host) if is_loopback_host(host) => {}
            Some(host) => {
                return ApiError::new("host-not-allowed", format!("this server listens on loopback and answers only for localhost, not '{host}'")).into_response();
            }
            None => return ApiError::new("host-not-allowed", "the request names no host").into_response(),
        }
    }
    let origin = header(headers, header::ORIGIN).map(str::to_string);
    if let Some(origin) = &origin {
        let same_origin = host.is_some_and(|host| origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host));
        let allowed = security.allowed_origins.iter().any(|o| o == origin);
        if !same_origin && !allowed {
            return ApiError::new("origin-not-allowed", format!("pages from {origin} may not call this server; configure it with --cors-origin")).into_response();
        }
        if allowed && request.method() == Method::OPTIONS {
            return preflight(origin);
        }
    }
    let mut hide_variables = false;
    let authenticating = security.authenticates();
    // The public routes have no path parameters, so the request's path is their template.
    // The console's pages hold no data: they ask for a token and send it with every API call.
    let public = crate::access::is_public(request.uri().path()) || console::is_console_path(request.uri().path());
    if authenticating && !public {
        let authorization = header(request.headers(), header::AUTHORIZATION).map(str::to_string);
        let outcome = match (&security.tokens, &security.oidc) {
            (Some(tokens), _) => tokens.authenticate(authorization.as_deref(), door.clock.now()),
            (None, Some(oidc)) => oidc.authenticate(authorization.as_deref()).await,
            (None, None) => Err(Refusal::Missing),
        };
        match outcome {
            Ok(principal) => {
                hide_variables = principal.hide_variables && request.method() == Method::GET;
                request.extensions_mut().insert(principal);
            }
            Err(refusal) => {
                let detail = match refusal {
                    Refusal::Missing => "this server needs a bearer token (Authorization: Bearer ...; the CLI takes --token or BATON_TOKEN)",
                    Refusal::Unknown => "the bearer token is not one this server knows",
                    Refusal::Expired => "the bearer token has expired",
                    Refusal::Revoked => "the bearer token was revoked",
                };
                return ApiError::new("unauthenticated", detail).into_response();
            }
        }
    }
    let mut response = inner(request).await;
    if hide_variables {
        response = without_variables(response).await;
    }
    if let Some(origin) = origin.filter(|o| security.allowed_origins.contains(o)) {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    response
}

/// Checks the principal's roles against the route it reached (a layer of the
/// routes, so it knows the route's template). Without tokens there is no
/// principal and nothing to check.
pub async fn authorize(request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>() else { return next.run(request).await };
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    let method = request.method().as_str().to_ascii_lowercase();
    // A route missing from the table is closed to everyone but admins.
    let needed = access(&method, &template).unwrap_or(Access::Roles(&[]));
    if !principal.may_call(needed) {
        let roles: Vec<&str> = principal.roles.iter().map(|r| r.as_str()).collect();
        let wanted = match needed {
            Access::Roles(roles) => roles.iter().map(|r| r.as_str()).chain(["admin"]).collect::<Vec<_>>().join(" or "),
            Access::Public => String::new(),
        };
        let detail = format!("{} (roles: {}) may not {} {template}; it takes {wanted}", principal.name, roles.join(", "), method.to_uppercase());
        return ApiError::new("forbidden", detail).into_response();
    }
    next.run(request).await
}

/// An answer with every variable value replaced by `"[hidden]"`, for
/// viewers whose token hides them.
async fn without_variables(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::new("store-failed", "an answer could not be read to hide its variables").into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    hide(&mut value);
    let mut response = Response::from_parts(parts, axum::body::Body::from(value.to_string()));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

fn hide(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                if matches!(name.as_str(), "variables" | "input") && !member.is_null() {
                    *member = serde_json::Value::String("[hidden]".into());
                } else {
                    hide(member);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(hide),
        _ => {}
    }
}

/// The answer to a CORS preflight from an allowed origin.
fn preflight(origin: &str) -> Response {
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, authorization, x-baton-actor"));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}
