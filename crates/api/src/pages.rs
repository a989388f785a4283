//! The web console's pages (crate `console`), served beside the API behind
//! the same door. They hold no data; every call they make goes through `/v1`
//! with the user's token.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn index() -> Response {
    serve(console::index())
}

pub async fn file(Path(path): Path<String>) -> Response {
    match console::file(&path) {
        Some(file) => serve(file),
        None => (StatusCode::NOT_FOUND, "no such file in the console").into_response(),
    }
}

fn serve(file: console::File) -> Response {
    let mut response = file.body.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    let cache = if file.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    // The pages load only their own files and talk only to this server; no other site may frame them.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; font-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
