//! Every error the API answers with: one table of stable codes, each with an
//! HTTP status and a page under `docs/errors/`. Bodies are
//! `application/problem+json` (RFC 9457) with the `code` beside the standard
//! members.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Code, status, title. A test checks each code has `docs/errors/<code>.md`.
pub const ERRORS: &[(&str, u16, &str)] = &[
    ("request-invalid", 400, "The request body is not what this endpoint takes"),
    ("query-invalid", 400, "A query parameter is not valid"),
    ("body-too-large", 413, "The request body is too large"),
    ("too-many-connections", 503, "The server is busy"),
    ("unsupported-media-type", 415, "A write takes application/json"),
    ("host-not-allowed", 421, "This server does not answer for that host"),
    ("origin-not-allowed", 403, "Pages from that origin may not call this server"),
    ("unauthenticated", 401, "A valid bearer token is needed"),
    ("forbidden", 403, "Your roles do not allow this"),
    ("route-not-found", 404, "No such endpoint"),
    ("camunda-operation-not-served", 501, "Part of Camunda's API that Baton does not serve"),
    ("await-timed-out", 504, "The instance did not end in the time asked"),
    ("backup-not-supported", 409, "This server's store is not a file Baton can copy"),
    ("method-not-allowed", 405, "The endpoint does not take this method"),
    ("deployment-invalid", 422, "The BPMN files have errors"),
    ("workflow-not-found", 404, "No such workflow"),
    ("instance-not-found", 404, "No such instance"),
    ("job-not-found", 404, "No such job"),
    ("task-not-found", 404, "No such user task"),
    ("form-not-found", 404, "No such form"),
    ("decision-not-found", 404, "No such decision"),
    ("decision-failed", 422, "The decision could not be evaluated"),
    ("incident-not-found", 404, "No such incident"),
    ("token-not-found", 404, "No such token"),
    ("token-name-taken", 409, "A token of that name exists"),
    ("instance-ended", 409, "The instance has ended"),
    ("instance-suspended", 409, "The instance is suspended"),
    ("instance-not-suspended", 409, "The instance is not suspended"),
    ("instance-not-ended", 409, "The instance has not ended"),
    ("no-start-event", 422, "The workflow cannot be started this way"),
    ("job-not-activatable", 409, "The job has an open incident"),
    ("job-lease-expired", 409, "The worker's lease on the job ran out"),
    ("job-leased-to-another-worker", 409, "Another worker holds the job"),
    ("job-lease-required", 409, "A worker holds the job; its lease token is needed"),
    ("task-claimed", 409, "The user task is assigned to someone else"),
    ("task-in-transition", 409, "The user task waits for its listeners"),
    ("timer-not-found", 404, "No such timer"),
    ("timer-not-due", 409, "The timer is not due yet"),
    ("subscription-not-found", 404, "No such subscription"),
    ("retries-exhausted", 409, "The job has no retries left"),
    ("element-not-found", 422, "No such element"),
    ("element-instance-not-found", 404, "No such element instance"),
    ("invalid-variables", 400, "The variables are not valid"),
    ("invalid-job-result", 400, "The job result is not valid for this job"),
    ("invalid-labels", 400, "The labels are not valid"),
    ("message-already-published", 409, "A message with this id is still buffered"),
    ("invalid-input", 400, "The command is not valid"),
    ("instance-faulted", 409, "The instance stopped on an engine fault or its variables' size"),
    ("variables-too-large", 422, "The command would make the instance's variables too large"),
    ("engine-fault", 500, "Baton failed while applying the command"),
    ("rate-limited", 429, "Too many requests of this kind from this client"),
    ("too-many-polls", 429, "Too many long polls from this client"),
    ("store-unavailable", 503, "The store is unavailable; try again"),
    ("overloaded", 503, "The server has more work in hand than it takes; retry shortly"),
    ("store-failed", 500, "The store failed"),
    ("store-damaged", 500, "The database is damaged"),
];

#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub detail: String,
    /// An extra member of the problem document (for example `diagnostics`).
    pub extra: Option<Box<(String, serde_json::Value)>>,
    /// What the store said when it found the database damaged: not for the
    /// client, but for the server, which stops saying it is ready
    /// ([`StoreDamaged`], read by the router's `note_damage` layer).
    pub damage: Option<String>,
}

/// On an answer: the store found the database damaged, in these words.
#[derive(Clone, Debug)]
pub struct StoreDamaged(pub String);

impl ApiError {
    pub fn new(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError { code: code.to_string(), detail: detail.into(), extra: None, damage: None }
    }

    /// The HTTP status this error answers with.
    pub fn http_status(&self) -> u16 {
        self.status().0.as_u16()
    }

    fn status(&self) -> (StatusCode, &'static str) {
        let (status, title) = ERRORS
            .iter()
            .find(|(code, _, _)| *code == self.code)
            .map(|(_, status, title)| (*status, *title))
            .unwrap_or((500, "Unexpected error"));
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), title)
    }
}

/// Store failures logged so far: each answer names its entry in the log.
static FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl From<runtime::Error> for ApiError {
    fn from(error: runtime::Error) -> ApiError {
        // What the database said can hold SQL and file paths: it goes to the
        // server's log, and the client gets a reference to it.
        if let runtime::Error::Store(inner) = &error {
            if !inner.is_unavailable() {
                let reference = FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                eprintln!("baton: store failure #{reference}: {inner}");
                if inner.is_corrupt() {
                    let mut api = ApiError::new(
                        "store-damaged",
                        format!("the database is damaged (the server's log has the details under store failure #{reference}); the server reports not ready: restore the file from a backup, `baton check` lists what is damaged"),
                    );
                    api.damage = Some(inner.to_string());
                    return api;
                }
                return ApiError::new(error.code(), format!("the store failed; the server's log has the details under store failure #{reference}"));
            }
        }
        let mut api = ApiError::new(error.code(), error.to_string());
        if let runtime::Error::Deploy(diagnostics) = &error {
            api.extra = Some(Box::new(("diagnostics".into(), crate::routes::diagnostics_json(diagnostics))));
        }
        api
    }
}

impl From<store::Error> for ApiError {
    fn from(error: store::Error) -> ApiError {
        if error.is_bad_cursor() {
            return ApiError::new("query-invalid", format!("after: {}", error.message()));
        }
        ApiError::from(runtime::Error::Store(error))
    }
}

impl ApiError {
    /// The problem document and its status, as every answer with this error carries them.
    pub(crate) fn problem(self) -> (StatusCode, Value) {
        let (status, title) = self.status();
        let mut body = json!({
            "type": format!("/docs/errors/{}", self.code),
            "title": title,
            "status": status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let Some(extra) = self.extra {
            let (name, value) = *extra;
            body[name] = value;
        }
        (status, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        let damage = self.damage.take();
        let (status, body) = self.problem();
        let mut response = (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response();
        if let Some(damage) = damage {
            response.extensions_mut().insert(StoreDamaged(damage));
        }
        // Busy or rate-limited: the client may try again, and is told when.
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}
