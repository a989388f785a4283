//! The web console's pages (crate `console`), served beside the API behind
//! the same door. They hold no data; every call they make goes through `/v1`
//! with the user's token.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::routes::AppState;

/// The pages load only their own files and talk only to this server (and,
/// for signing in, to the issuer's token endpoint); no other site may frame them.
pub fn policy(sign_in: Option<&crate::oidc::SignIn>) -> String {
    let issuer = sign_in.and_then(|s| s.token_origin()).map(|origin| format!(" {origin}")).unwrap_or_default();
    format!(
        "default-src 'self'; connect-src 'self'{issuer}; img-src 'self' data:; font-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
}

pub async fn index(State(state): State<AppState>) -> Response {
    serve(console::index(), &state.page_policy)
}

pub async fn file(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    match console::file(&path) {
        Some(file) => serve(file, &state.page_policy),
        None => (StatusCode::NOT_FOUND, "no such file in the console").into_response(),
    }
}

fn serve(file: console::File, policy: &str) -> Response {
    let mut response = file.body.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    let cache = if file.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
