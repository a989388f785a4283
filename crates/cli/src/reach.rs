//! Which CLI command reaches each route of the API, and which argument
//! carries each of its fields: the CLI does what the API does. A test walks
//! `api::ROUTES` against this table and the parsed command tree, so a route
//! or a field added to the API without a CLI form fails the build.

/// How a field of a route reaches the server from the CLI.
pub enum Carried {
    /// By the argument with this id (a flag or a positional argument).
    Arg(&'static str),
    /// Set by the command itself; the text says why the user does not give it.
    ByCommand(&'static str),
}

use Carried::{Arg, ByCommand};

/// Method, path, the command's words, and the fields whose argument id
/// differs from the field's name (every other field is carried by the
/// argument of the same name). `after` and `limit` are not listed: list
/// commands read every page.
pub type Reach = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, Carried)],
);

pub const REACH: &[Reach] = &[
    (
        "post",
        "/v1/workflows",
        "deploy",
        &[("resources", Arg("files"))],
    ),
    ("get", "/v1/workflows", "workflows list", &[]),
    ("get", "/v1/decisions", "decisions list", &[]),
    ("get", "/v1/decisions/{decision_id}", "decisions show", &[]),
    ("post", "/v1/decisions/{decision_id}/evaluate", "decide", &[("variables", Arg("vars"))]),
    ("get", "/v1/forms", "forms list", &[]),
    ("get", "/v1/forms/{form_id}", "forms show", &[]),
    ("get", "/v1/workflows/{key}", "workflows show", &[]),
    (
        "get",
        "/v1/workflows/{key}/versions/{version}",
        "workflows show",
        &[],
    ),
    (
        "post",
        "/v1/instances",
        "start",
        &[("variables", Arg("vars"))],
    ),
    (
        "get",
        "/v1/instances",
        "instances list",
        &[("parent_id", Arg("parent")), ("root_id", Arg("root"))],
    ),
    ("get", "/v1/instances/counts", "instances counts", &[]),
    ("get", "/v1/instances/{id}", "instances show", &[]),
    (
        "get",
        "/v1/instances/{id}/history",
        "instances history",
        &[],
    ),
    ("post", "/v1/instances/{id}/cancel", "instances cancel", &[]),
    ("post", "/v1/instances/{id}/delete", "instances delete", &[]),
    ("post", "/v1/instances/{id}/keep", "instances keep", &[]),
    (
        "post",
        "/v1/instances/{id}/suspend",
        "instances suspend",
        &[],
    ),
    ("post", "/v1/instances/{id}/resume", "instances resume", &[]),
    (
        "post",
        "/v1/instances/{id}/variables",
        "instances variables",
        &[("variables", Arg("vars"))],
    ),
    (
        "post",
        "/v1/instances/{id}/labels",
        "instances labels",
        &[("labels", Arg("set"))],
    ),
    ("post", "/v1/instances/{id}/modify", "instances modify", &[]),
    ("post", "/v1/instances/{id}/rerun", "instances rerun", &[]),
    ("post", "/v1/jobs/activate", "jobs activate", &[("type", Arg("job_type")), ("tenants", Arg("tenant"))]),
    (
        "post",
        "/v1/jobs/stream",
        "worker",
        &[
            ("type", Arg("job_type")),
            ("worker", Arg("name")),
            ("window", Arg("concurrency")),
            ("limit", Arg("max_jobs")),
            ("tenants", Arg("tenant")),
        ],
    ),
    (
        "post",
        "/v1/jobs/report",
        "jobs report",
        &[("jobs", Arg("file"))],
    ),
    (
        "get",
        "/v1/jobs",
        "jobs list",
        &[("type", Arg("job_type")), ("instance_id", Arg("instance"))],
    ),
    (
        "post",
        "/v1/jobs/{key}/complete",
        "jobs complete",
        &[
            ("variables", Arg("vars")),
            ("override", Arg("override_lease")),
            ("result", Arg("result_json")),
        ],
    ),
    (
        "post",
        "/v1/jobs/{key}/fail",
        "jobs fail",
        &[("variables", Arg("vars")), ("override", Arg("override_lease"))],
    ),
    (
        "post",
        "/v1/jobs/{key}/error",
        "jobs error",
        &[
            ("variables", Arg("vars")),
            ("override", Arg("override_lease")),
        ],
    ),
    ("post", "/v1/jobs/{key}/retries", "jobs retries", &[]),
    (
        "get",
        "/v1/tasks",
        "tasks list",
        &[
            ("candidate_group", Arg("group")),
            ("instance_id", Arg("instance")),
            ("state", ByCommand("--completed and --all")),
        ],
    ),
    ("get", "/v1/tasks/{key}", "tasks show", &[]),
    ("get", "/v1/tasks/{key}/form", "tasks form", &[]),
    ("post", "/v1/tasks/{key}/claim", "tasks claim", &[]),
    ("post", "/v1/tasks/{key}/unclaim", "tasks unclaim", &[]),
    ("post", "/v1/tasks/{key}/assign", "tasks assign", &[]),
    ("post", "/v1/tasks/{key}/update", "tasks update", &[]),
    (
        "post",
        "/v1/tasks/{key}/complete",
        "tasks complete",
        &[("variables", Arg("vars"))],
    ),
    (
        "post",
        "/v1/messages",
        "publish",
        &[
            ("correlation_key", Arg("key")),
            ("variables", Arg("vars")),
            ("ttl_ms", Arg("ttl")),
        ],
    ),
    (
        "get",
        "/v1/messages",
        "messages list",
        &[("state", Arg("undelivered"))],
    ),
    (
        "post",
        "/v1/signals",
        "signal",
        &[("variables", Arg("vars"))],
    ),
    (
        "post",
        "/v1/conditionals/evaluate",
        "conditionals evaluate",
        &[("variables", Arg("vars"))],
    ),
    (
        "get",
        "/v1/subscriptions",
        "subscriptions list",
        &[("instance_id", Arg("instance"))],
    ),
    (
        "get",
        "/v1/timers",
        "timers list",
        &[("instance_id", Arg("instance"))],
    ),
    (
        "post",
        "/v1/timers/{key}/reschedule",
        "timers reschedule",
        &[],
    ),
    (
        "get",
        "/v1/incidents",
        "incidents list",
        &[("instance_id", Arg("instance")), ("state", Arg("resolved"))],
    ),
    (
        "post",
        "/v1/incidents/{key}/resolve",
        "incidents resolve",
        &[],
    ),
    ("post", "/v1/tokens", "tokens create", &[]),
    ("get", "/v1/tokens", "tokens list", &[]),
    ("post", "/v1/tokens/{id}/revoke", "tokens revoke", &[]),
    ("get", "/v1/backup", "backup", &[]),
    ("get", "/v1/me", "whoami", &[]),
    ("get", "/v1/sign-in", "sign-in", &[]),
    ("get", "/v1/openapi.json", "openapi", &[]),
    ("get", "/healthz", "health", &[]),
    ("get", "/readyz", "health", &[]),
    ("get", "/metrics", "metrics", &[]),
];
