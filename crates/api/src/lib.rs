//! Baton's REST API: JSON under `/v1`, errors as `application/problem+json`
//! with a stable code ([`error::ERRORS`]), cursor pagination on every list,
//! and an OpenAPI document at `/v1/openapi.json` built from the same route
//! table as the router ([`ROUTES`]).
//!
//! Only this crate knows HTTP. Writes go through the runtime's commit loop and
//! are answered after they commit; reads go to the store.

pub mod access;
pub mod camunda;
pub mod zeebe;
mod decisions;
pub mod error;
pub mod connections;
mod extract;
/// The most bytes of a request body an endpoint reads: a deployment's, and any other's.
pub use extract::{BODY_LIMIT, DEPLOY_LIMIT};
pub use extract::MAX_JSON_DEPTH;
mod forms;
mod jobs;
pub mod guard;
pub mod limits;
pub mod oidc;
mod openapi;
mod pages;
mod routes;
pub mod schemas;
mod tenancy;
pub mod tls;
mod tokens;
mod waits;

use axum::routing::{get, post, MethodRouter};
use axum::Router;
use runtime::Handle;

pub use error::{ApiError, ERRORS};
pub use openapi::openapi;
use routes::*;

/// Longest a request may take: the longest long poll (60 s) and a margin.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(75);

/// Method, path, summary, body fields, query fields.
pub type Route = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// The API at a glance, and the source of the OpenAPI document.
pub const ROUTES: &[Route] = &[
    (
        "post",
        "/v1/workflows",
        "Deploy BPMN files, DMN decisions (*.dmn) and forms (a *.form file's JSON in xml) all or nothing; identical content keeps its version",
        &["resources", "tenant"],
        &[],
    ),
    ("get", "/v1/decisions", "List deployed DMN decisions, every version", &[], &["tenant", "decision_id", "after", "limit"]),
    ("get", "/v1/decisions/{decision_id}", "Get a deployed decision with its DMN file: the latest version, or the one asked for", &[], &["tenant", "version"]),
    (
        "post",
        "/v1/decisions/{decision_id}/evaluate",
        "Evaluate a deployed decision with variables: its result, version and the rules that matched (writes nothing)",
        &["variables", "version", "tenant"],
        &[],
    ),
    ("get", "/v1/forms", "List deployed forms, every version", &[], &["tenant", "form_id", "after", "limit"]),
    ("get", "/v1/forms/{form_id}", "Get a deployed form with its schema: the latest version, or the one asked for", &[], &["tenant", "version"]),
    ("get", "/v1/workflows", "List deployed workflow versions", &[], &["tenant", "after", "limit"]),
    ("get", "/v1/workflows/{key}", "Get the latest version of a workflow, with its XML", &[], &["tenant"]),
    ("get", "/v1/workflows/{key}/versions/{version}", "Get one version of a workflow, with its XML", &[], &["tenant"]),
    (
        "post",
        "/v1/instances",
        "Start an instance (idempotent with request_id)",
        &["workflow", "version", "variables", "business_key", "request_id", "labels", "tenant"],
        &[],
    ),
    (
        "get",
        "/v1/instances",
        "List instances",
        &[],
        &[
            "tenant",
            "status",
            "workflow",
            "version",
            "business_key",
            "waiting",
            "has_incidents",
            "started_after",
            "started_before",
            "ended_after",
            "ended_before",
            "variable",
            "parent_id",
            "label",
            "root_id",
            "order",
            "after",
            "limit",
        ],
    ),
    (
        "get",
        "/v1/instances/counts",
        "Count instances by status, with open incidents, and per workflow version (kept as instances change: no scan)",
        &[],
        &["tenant", "workflow", "version"],
    ),
    (
        "get",
        "/v1/instances/{id}",
        "Get an instance: status, labels, lineage, who created and last changed it, how it ended, input, variables, tokens, its incidents and its called instances', update count",
        &[],
        &[],
    ),
    (
        "get",
        "/v1/instances/{id}/history",
        "The instance's audit log, in order: element instances, incidents, job failures, variable changes, operator actions",
        &[],
        &["element", "element_type", "event", "run", "after", "limit"],
    ),
    ("post", "/v1/instances/{id}/cancel", "Cancel an instance", &["reason"], &[]),
    (
        "post",
        "/v1/instances/{id}/delete",
        "Delete an ended instance now, with its history, jobs, tasks and incidents (who and why go to the server's log)",
        &["reason"],
        &[],
    ),
    (
        "post",
        "/v1/instances/{id}/keep",
        "Keep an ended instance until a time, when it is deleted, or for ever (null), in place of its retention",
        &["until", "reason"],
        &[],
    ),
    ("post", "/v1/instances/{id}/suspend", "Suspend an instance: no job is handed out, no timer fires", &["reason"], &[]),
    ("post", "/v1/instances/{id}/resume", "Resume a suspended instance", &["reason"], &[]),
    ("post", "/v1/instances/{id}/variables", "Set variables on the instance's scope", &["variables", "reason"], &[]),
    ("post", "/v1/instances/{id}/labels", "Set labels (a value) or remove them (null)", &["labels", "reason"], &[]),
    ("post", "/v1/instances/{id}/modify", "Activate and terminate element instances", &["activate", "terminate", "reason"], &[]),
    (
        "post",
        "/v1/instances/{id}/rerun",
        "Run an ended instance again (its next run) with its original input, from the start or from an element",
        &["from", "reason"],
        &[],
    ),
    ("post", "/v1/jobs/activate", "Take jobs of a type under a lease, waiting up to timeout_ms for some", &["type", "worker", "max_jobs", "lease_ms", "timeout_ms", "tenants"], &[]),
    (
        "post",
        "/v1/jobs/stream",
        "Jobs of a type pushed as they are created, one per line (newline-delimited JSON), at most window of them unreported at once",
        &["type", "worker", "window", "lease_ms", "limit", "tenants"],
        &[],
    ),
    (
        "post",
        "/v1/jobs/report",
        "Complete, fail or throw errors from many jobs in one request; the answer gives each job's outcome",
        &["worker", "jobs"],
        &[],
    ),
    ("get", "/v1/jobs", "List open jobs", &[], &["tenant", "type", "instance_id", "state", "after", "limit"]),
    ("post", "/v1/jobs/{key}/complete", "Complete a job (with its lease, or an operator's override); an ad-hoc subprocess's job with its result", &["worker", "lease", "override", "reason", "variables", "result"], &[]),
    (
        "post",
        "/v1/jobs/{key}/fail",
        "Fail a job: retries left, backoff, message; variables set on its element instance",
        &["worker", "lease", "override", "reason", "retries", "message", "backoff_ms", "variables"],
        &[],
    ),
    ("post", "/v1/jobs/{key}/error", "Throw a BPMN error from a job", &["worker", "lease", "override", "reason", "code", "message", "variables"], &[]),
    ("post", "/v1/jobs/{key}/retries", "Set the retries of a job", &["retries", "reason"], &[]),
    (
        "get",
        "/v1/tasks",
        "List user tasks: open ones, or completed ones (kept, with who completed them)",
        &[],
        &["tenant", "assignee", "candidate_group", "workflow", "instance_id", "state", "completed_by", "after", "limit"],
    ),
    ("get", "/v1/tasks/{key}", "Get a user task", &[], &[]),
    (
        "get",
        "/v1/tasks/{key}/form",
        "The form to complete an open user task with (embedded, deployed, generated from its inputs, external or none) and the variables it sees",
        &[],
        &[],
    ),
    ("post", "/v1/tasks/{key}/claim", "Claim a user task (refused when someone else holds it)", &["assignee"], &[]),
    ("post", "/v1/tasks/{key}/unclaim", "Give a user task back", &[], &[]),
    ("post", "/v1/tasks/{key}/assign", "Assign a user task to someone", &["assignee"], &[]),
    ("post", "/v1/tasks/{key}/update", "Change a user task's due date, follow-up date, priority or candidates", &["due", "follow_up", "priority", "candidate_groups", "candidate_users"], &[]),
    ("post", "/v1/tasks/{key}/complete", "Complete a user task", &["variables"], &[]),
    ("post", "/v1/messages", "Publish a message", &["name", "correlation_key", "variables", "ttl_ms", "message_id", "tenant"], &[]),
    ("get", "/v1/messages", "List messages kept with a time to live: buffered, or undelivered (expired with nobody taking them)", &[], &["tenant", "state", "name", "after", "limit"]),
    ("post", "/v1/signals", "Broadcast a signal to one tenant's instances", &["name", "variables", "tenant"], &[]),
    ("post", "/v1/conditionals/evaluate", "Start the workflows whose conditional start events the variables make true", &["variables", "workflow", "tenant"], &[]),
    ("get", "/v1/subscriptions", "List open message and signal subscriptions", &[], &["tenant", "instance_id", "kind", "name", "after", "limit"]),
    ("get", "/v1/timers", "List pending timers in due order (the first page starts with timer start events)", &[], &["tenant", "instance_id", "due_before", "after", "limit"]),
    ("post", "/v1/timers/{key}/reschedule", "Move a pending timer to a new due time", &["due_at", "reason"], &[]),
    ("get", "/v1/incidents", "List incidents: open ones, or resolved ones (kept, with who resolved them)", &[], &["tenant", "state", "instance_id", "descendants", "workflow", "after", "limit"]),
    ("post", "/v1/incidents/{key}/resolve", "Resolve an incident", &["reason"], &[]),
    ("post", "/v1/tokens", "Create an API token (admins); the token is in this answer only", &["name", "roles", "job_types", "workflows", "groups", "tenants", "hide_variables", "expires_at"], &[]),
    ("get", "/v1/tokens", "List API tokens (admins); never their secrets", &[], &[]),
    ("post", "/v1/tokens/{id}/revoke", "Revoke an API token (admins)", &[], &[]),
    ("get", "/v1/backup", "A consistent copy of the SQLite database, taken while the server runs (admins): a server started on it has everything committed before the copy began", &[], &[]),
    ("get", "/v1/me", "Who the request's token stands for, and which routes it may call (the console offers only those)", &[], &[]),
    (
        "get",
        "/v1/sign-in",
        "How to sign in (public): no authentication, API tokens, or OpenID Connect with the console's authorization-code + PKCE settings",
        &[],
        &[],
    ),
    ("get", "/v1/openapi.json", "This document", &[], &[]),
    ("get", "/healthz", "The process is up", &[], &[]),
    ("get", "/readyz", "The store answers", &[], &[]),
    ("get", "/metrics", "Prometheus metrics", &[], &[]),
];

/// Serves the API on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (each answers after its commit).
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: Handle,
    security: guard::Security,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener.into_std()?,
        handle,
        security,
        None,
        HEADER_READ_TIMEOUT,
        shutdown,
    )
    .await
}

/// How long a client may take to send a request's headers: a slow client
/// (or thousands of them) cannot hold connections open for nothing.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the API on `listener`, over HTTPS when `tls` is given, closing
/// connections whose request headers take longer than `header_timeout`,
/// until `shutdown` resolves; then lets the requests in flight finish.
pub async fn serve_with(
    listener: std::net::TcpListener,
    handle: Handle,
    security: guard::Security,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    header_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server_handle = axum_server::Handle::new();
    let stopper = server_handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(REQUEST_TIMEOUT));
    });
    if let Some(tokens) = security.tokens.clone() {
        tokens::follow(handle.clone(), tokens);
    }
    let connections = connections::Connections::new(security.limits.max_connections);
    let service = router_with_connections(handle, security, Some(connections.clone())).into_make_service();
    macro_rules! run {
        ($server:expr) => {{
            let mut server = $server.handle(server_handle);
            server
                .http_builder()
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            server.serve(service).await
        }};
    }
    // Each connection counts against the cap before anything else (the TLS handshake too).
    let plain = tls.is_none();
    let capped = connections::Capped::new(axum_server::accept::DefaultAcceptor, connections, plain);
    match tls {
        Some(tls) => {
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(axum_server::tls_rustls::RustlsConfig::from_config(tls)).acceptor(capped);
            run!(axum_server::from_tcp(listener).acceptor(tls))
        }
        None => run!(axum_server::from_tcp(listener).acceptor(capped)),
    }
}

/// The whole API behind the default door (no host or origin restrictions
/// beyond same-origin; writes take JSON only).
pub fn router(handle: Handle) -> Router {
    router_with(handle, guard::Security::default())
}

/// What every handler reads: the runtime's handle and what `security` configures.
fn app_state(handle: Handle, security: &guard::Security, connections: Option<std::sync::Arc<connections::Connections>>) -> AppState {
    AppState(std::sync::Arc::new(AppParts {
        connections,
        handle,
        tokens: security.tokens.clone(),
        limits: std::sync::Arc::new(limits::Limits::new(security.limits.clone())),
        sign_in: std::sync::Arc::new(tokens::sign_in_json(security)),
        page_policy: std::sync::Arc::new(pages::policy(security.oidc.as_ref().and_then(|o| o.sign_in.as_ref()))),
        numbers: std::sync::Arc::new(camunda::keys::Numbers::default()),
    }))
}

/// The whole API behind a door configured by `security`.
pub fn router_with(handle: Handle, security: guard::Security) -> Router {
    router_with_connections(handle, security, None)
}

/// [`router_with`], reporting the connection cap's figures in `/metrics`.
fn router_with_connections(handle: Handle, security: guard::Security, connections: Option<std::sync::Arc<connections::Connections>>) -> Router {
    let state = app_state(handle.clone(), &security, connections);
    let limits = state.limits.clone();
    let door = guard::Door {
        security: std::sync::Arc::new(security),
        clock: handle.clock.clone(),
    };
    let route = |path: &str, method: MethodRouter<AppState>, router: Router<AppState>| {
        router.route(path, method)
    };
    let mut router = Router::new();
    router = route("/v1/workflows", post(deploy).get(list_workflows), router);
    router = route("/v1/workflows/{key}", get(get_workflow), router);
    router = route(
        "/v1/workflows/{key}/versions/{version}",
        get(get_workflow_version),
        router,
    );
    router = route(
        "/v1/instances",
        post(start_instance).get(list_instances),
        router,
    );
    router = route("/v1/decisions", get(decisions::list_decisions), router);
    router = route("/v1/decisions/{decision_id}", get(decisions::get_decision), router);
    router = route("/v1/decisions/{decision_id}/evaluate", post(decisions::evaluate_decision), router);
    router = route("/v1/forms", get(forms::list_forms), router);
    router = route("/v1/forms/{form_id}", get(forms::get_form), router);
    router = route("/v1/instances/counts", get(count_instances), router);
    router = route("/v1/instances/{id}", get(get_instance), router);
    router = route("/v1/instances/{id}/history", get(instance_history), router);
    router = route("/v1/instances/{id}/cancel", post(cancel_instance), router);
    router = route("/v1/instances/{id}/delete", post(delete_instance), router);
    router = route("/v1/instances/{id}/keep", post(keep_instance), router);
    router = route("/v1/instances/{id}/suspend", post(suspend_instance), router);
    router = route("/v1/instances/{id}/resume", post(resume_instance), router);
    router = route("/v1/instances/{id}/variables", post(set_variables), router);
    router = route("/v1/instances/{id}/labels", post(set_labels), router);
    router = route("/v1/instances/{id}/rerun", post(rerun_instance), router);
    router = route("/v1/instances/{id}/modify", post(modify_instance), router);
    router = route("/v1/jobs/activate", post(activate_jobs), router);
    router = route("/v1/jobs/stream", post(jobs::stream_jobs), router);
    router = route("/v1/jobs/report", post(jobs::report_jobs), router);
    router = route("/v1/jobs", get(list_jobs), router);
    router = route("/v1/jobs/{key}/complete", post(complete_job), router);
    router = route("/v1/jobs/{key}/fail", post(fail_job), router);
    router = route("/v1/jobs/{key}/error", post(throw_error), router);
    router = route("/v1/jobs/{key}/retries", post(update_retries), router);
    router = route("/v1/tasks", get(list_tasks), router);
    router = route("/v1/tasks/{key}", get(get_task), router);
    router = route("/v1/tasks/{key}/form", get(forms::task_form), router);
    router = route("/v1/tasks/{key}/claim", post(claim_task), router);
    router = route("/v1/tasks/{key}/unclaim", post(unclaim_task), router);
    router = route("/v1/tasks/{key}/assign", post(assign_task), router);
    router = route("/v1/tasks/{key}/update", post(update_task), router);
    router = route("/v1/tasks/{key}/complete", post(complete_task), router);
    router = route(
        "/v1/messages",
        post(publish_message).get(waits::list_messages),
        router,
    );
    router = route("/v1/subscriptions", get(waits::list_subscriptions), router);
    router = route("/v1/timers", get(waits::list_timers), router);
    router = route(
        "/v1/timers/{key}/reschedule",
        post(waits::reschedule_timer),
        router,
    );
    router = route("/v1/signals", post(broadcast_signal), router);
    router = route("/v1/conditionals/evaluate", post(evaluate_conditionals), router);
    router = route("/v1/incidents", get(list_incidents), router);
    router = route(
        "/v1/incidents/{key}/resolve",
        post(resolve_incident),
        router,
    );
    router = route(
        "/v1/openapi.json",
        get(|| async { axum::Json(openapi()) }),
        router,
    );
    router = route(
        "/v1/tokens",
        post(tokens::create_token).get(tokens::list_tokens),
        router,
    );
    router = route("/v1/backup", get(backup), router);
    router = route("/v1/tokens/{id}/revoke", post(tokens::revoke_token), router);
    router = route("/v1/me", get(tokens::me), router);
    router = route("/v1/sign-in", get(tokens::sign_in), router);
    // Camunda 8's REST API, for its clients (crate::camunda).
    router = camunda::routes(router);
    router = route("/healthz", get(healthz), router);
    router = route("/readyz", get(readyz), router);
    router = route("/metrics", get(metrics), router);
    // The web console (crate `console`): its pages beside the API, behind the same door.
    router = route("/", get(pages::index), router);
    router = route("/console", get(pages::index), router);
    router = route("/console/", get(pages::index), router);
    router = route("/console/{*path}", get(pages::file), router);
    router = router.fallback(not_found).method_not_allowed_fallback(|| async {
        ApiError::new("method-not-allowed", "this endpoint does not take this method; see /v1/openapi.json")
    });
    // Only a server that authenticates has principals whose roles to check
    // (the door puts them on requests); elsewhere the layer would cost each
    // request a clone of its route and a boxed future for nothing.
    if door.security.authenticates() {
        router = router.route_layer(axum::middleware::from_fn(guard::authorize));
    }
    router
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(std::sync::Arc::new(Front { door, limits, handle }), front))
        // No request holds the server longer than the longest long poll and a margin.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// What the middleware in front of the routes needs.
struct Front {
    door: guard::Door,
    limits: std::sync::Arc<limits::Limits>,
    handle: Handle,
}

/// The one middleware in front of the routes; each request passes, from
/// the outside in: Camunda's form for problems under `/v2`
/// ([`camunda::problems`]), the door ([`guard::door`]), room for its body
/// ([`limits::bodies`]: inside the door, so a request it turns away takes
/// none) and the watch for a damaged store ([`note_damage`]). They are one
/// axum layer, not four, because each layer clones all it wraps and boxes
/// a future for every request: a fifth of the API's allocations under load
/// (docs/benchmarks.md, "A ninth round").
async fn front(
    axum::extract::State(front): axum::extract::State<std::sync::Arc<Front>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let routes = async |request| next.run(request).await;
    let watched = async |request| note_damage(&front.handle, request, routes).await;
    let with_room = async |request| limits::bodies(&front.limits, request, watched).await;
    let admitted = async |request| guard::door(&front.door, request, with_room).await;
    camunda::problems(request, admitted).await
}

/// An answer that met a damaged database (an [`error::StoreDamaged`] on
/// it) makes the server say it is not ready, from then on.
async fn note_damage(
    handle: &Handle,
    request: axum::extract::Request,
    inner: impl AsyncFnOnce(axum::extract::Request) -> axum::response::Response,
) -> axum::response::Response {
    let response = inner(request).await;
    if let Some(error::StoreDamaged(what)) = response.extensions().get::<error::StoreDamaged>() {
        handle.note_damage(what);
    }
    response
}
