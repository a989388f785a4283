//! The `baton` command line: argv is parsed here and nowhere else.
//!
//! Data goes to stdout, messages to stderr; every command exits non-zero on
//! failure. The commands themselves live in the other crates; this one only
//! parses, validates and prints.

/// `println!` for data on stdout that ends the process quietly when the
/// reader has gone (`baton instances list | head -1`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

mod bench;
pub mod client;
mod commands;
pub mod reach;
mod serve;
mod tck;
mod tokens;
pub mod validate;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use client::{Client, Failure, DEFAULT_SERVER};

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Baton, a durable workflow engine for BPMN 2.0"
)]
pub struct Cli {
    /// The Baton server the client commands talk to.
    #[arg(long, global = true, env = "BATON_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Who you are, recorded on what the commands change (sent as X-Baton-Actor).
    #[arg(long = "as", global = true, env = "BATON_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
    /// The API token to send (`Authorization: Bearer`), for a server with `--auth token`.
    #[arg(long, global = true, env = "BATON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The tenant to work in: deploy, start, publish and signal go to it; lists, shows and the worker keep to it.
    /// Without it, a token of one tenant works in that one, any other in `default`, and lists show every tenant you reach.
    #[arg(long, global = true, env = "BATON_TENANT")]
    pub tenant: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's, for a server with its own certificate authority.
    #[arg(long, global = true, env = "BATON_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Variables given on the command line.
#[derive(Debug, clap::Args)]
pub struct VarArgs {
    /// A variable: name=value (JSON if it parses as JSON, text otherwise). Repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Variables as one JSON object.
    #[arg(long, value_name = "JSON")]
    pub vars_json: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum InstancesCommand {
    /// Count instances by status and with open incidents, per workflow version.
    Counts {
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        version: Option<u32>,
        /// The answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List instances (every page).
    List {
        #[command(flatten)]
        filter: Box<commands::InstanceListArgs>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one instance: status, input, variables, tokens, its incidents and its called instances'.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// The audit log of an instance, in order: element instances, incidents,
    /// job failures, changes and operator actions, with who did them.
    History {
        id: String,
        #[command(flatten)]
        filter: commands::HistoryArgs,
        #[arg(long)]
        json: bool,
    },
    Cancel {
        id: String,
        /// Why; kept on the instance and in its history.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Keep an ended instance until a time (then it is deleted), or for ever, in place of its retention.
    Keep {
        id: String,
        /// When to delete it (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long, required_unless_present = "forever", conflicts_with = "forever")]
        until: Option<String>,
        /// Never delete it.
        #[arg(long)]
        forever: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete ended instances now, with their history, jobs, tasks and incidents.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
        /// Why; written to the server's log with who deleted them (their history goes with them).
        #[arg(long)]
        reason: Option<String>,
    },
    Suspend {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    Resume {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Set variables on the instance's own scope.
    Variables {
        id: String,
        #[command(flatten)]
        variables: VarArgs,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Set (--set name=value) or remove (--remove name) labels.
    Labels {
        id: String,
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[arg(long = "remove", value_name = "NAME")]
        remove: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Run an ended instance again with its original input: its next run.
    Rerun {
        id: String,
        /// An element of the process's own scope to start from (default: the
        /// start event; for a failed instance, the element before its error end event).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Activate elements and terminate the active instances of others.
    Modify {
        id: String,
        #[arg(long = "activate", value_name = "ELEMENT")]
        activate: Vec<String>,
        #[arg(long = "terminate", value_name = "ELEMENT")]
        terminate: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token; prints it once. With --db, on a database file no server holds.
    Create {
        #[command(flatten)]
        token: tokens::TokenArgs,
        /// Work on this database file (sqlite://FILE) instead of through the server.
        #[arg(long)]
        db: Option<String>,
    },
    /// List API tokens (never their secrets).
    List {
        #[arg(long)]
        db: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token by its id.
    Revoke {
        id: String,
        #[arg(long)]
        db: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TimersCommand {
    /// List pending timers in due order, timer start events first.
    List {
        #[arg(long)]
        instance: Option<String>,
        /// Only timers due at or before this time (RFC 3339).
        #[arg(long)]
        due_before: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Move a pending timer (KEY as listed) to a new due time.
    Reschedule {
        key: String,
        /// The new due time (RFC 3339), for example 2026-12-24T09:00:00Z.
        #[arg(long)]
        due_at: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// List messages kept with a time to live: still buffered, or --undelivered.
    List {
        /// Messages that expired before any process took them.
        #[arg(long)]
        undelivered: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// List open message and signal subscriptions.
    List {
        #[arg(long)]
        instance: Option<String>,
        /// message or signal.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// List deployed workflow versions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a deployed workflow: the latest version, or --version N.
    Show {
        key: String,
        #[arg(long)]
        version: Option<u32>,
        /// Print its BPMN XML.
        #[arg(long)]
        xml: bool,
    },
}

/// What an error end event nobody catches does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UncaughtErrors {
    /// The instance fails (BPMN 2.0.2; Baton's default).
    Fail,
    /// An incident on the end event (Camunda 8's way); resolving it throws again.
    Incident,
}

#[derive(Debug, Subcommand)]
pub enum DecisionsCommand {
    /// List deployed decisions, every version.
    List {
        /// Only the versions of this decision.
        #[arg(long)]
        decision_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a deployed decision: the latest version, or --version N; --xml prints its DMN file.
    Show {
        decision_id: String,
        #[arg(long)]
        version: Option<u32>,
        #[arg(long)]
        xml: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FormsCommand {
    /// List deployed forms, every version.
    List {
        /// Only the versions of this form.
        #[arg(long)]
        form_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a deployed form with its schema: the latest version, or --version N.
    Show {
        form_id: String,
        #[arg(long)]
        version: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Set how many retries a job has left (then resolve its incident).
    Retries {
        key: String,
        retries: u32,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Complete a job by hand.
    Complete {
        key: String,
        #[command(flatten)]
        claim: commands::ClaimArgs,
        #[command(flatten)]
        variables: VarArgs,
        /// For an ad-hoc subprocess's job, its decision as JSON: {"activateElements": [{"elementId": "...", "variables": {...}}]}
        /// or {"isCompletionConditionFulfilled": true, "isCancelRemainingInstances": false}.
        #[arg(long, value_name = "JSON")]
        result_json: Option<String>,
    },
    /// Fail a job: with retries left it is handed out again (after --backoff-ms).
    Fail {
        key: String,
        #[command(flatten)]
        claim: commands::ClaimArgs,
        /// Retries left after this failure; 0 raises an incident.
        #[arg(long)]
        retries: u32,
        #[arg(long, default_value = "")]
        message: String,
        #[arg(long, default_value_t = 0)]
        backoff_ms: i64,
        /// Set on the job's element instance (its local scope).
        #[command(flatten)]
        variables: VarArgs,
    },
    /// Throw a BPMN error from a job.
    Error {
        key: String,
        #[command(flatten)]
        claim: commands::ClaimArgs,
        #[arg(long)]
        code: String,
        #[arg(long, default_value = "")]
        message: String,
        #[command(flatten)]
        variables: VarArgs,
    },
    /// List open jobs.
    List {
        #[command(flatten)]
        filter: commands::JobListArgs,
        #[arg(long)]
        json: bool,
    },
    /// Take jobs of a type once (waiting up to --timeout-ms for some), printing
    /// each as a line of JSON with its lease.
    Activate {
        #[arg(long = "type")]
        job_type: String,
        #[arg(long)]
        worker: String,
        #[arg(long, default_value_t = 1)]
        max_jobs: usize,
        #[arg(long, default_value_t = 300_000)]
        lease_ms: i64,
        /// How long to wait for a job when there is none (ms).
        #[arg(long, default_value_t = 0)]
        timeout_ms: u64,
    },
    /// Take jobs of a type as they are created, printing each as a line of
    /// JSON (with its lease), at most --window of them unreported at once.
    Stream {
        #[arg(long = "type")]
        job_type: String,
        /// The worker's name, recorded on the jobs it takes.
        #[arg(long)]
        worker: String,
        /// Jobs taken and not yet reported (with `baton jobs report`), at most.
        #[arg(long, default_value_t = 1)]
        window: usize,
        /// How long a job stays with this worker before it may go to another (ms).
        #[arg(long, default_value_t = 300_000)]
        lease_ms: i64,
        /// Stop after this many jobs.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Report many jobs' outcomes in one request: a JSON array of entries
    /// {"key", "lease", and one of "complete": {"variables"}, "fail":
    /// {"retries", "message", "backoff_ms"}, "error": {"code", "message"}},
    /// read from FILE or stdin (`-`). Prints each job's outcome; fails when any was refused.
    Report {
        #[arg(long)]
        worker: String,
        #[arg(default_value = "-")]
        file: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// List open user tasks (or --completed ones, or --all).
    List {
        #[command(flatten)]
        filter: commands::TaskListArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one user task.
    Show {
        key: String,
    },
    /// Show the form to complete a user task with, and the variables to fill it.
    Form {
        key: String,
    },
    /// Change a user task's due date, follow-up date, priority or candidates
    /// (its update listeners see the change first). "" or an empty list clears.
    Update {
        key: String,
        #[arg(long)]
        due: Option<String>,
        #[arg(long)]
        follow_up: Option<String>,
        #[arg(long)]
        priority: Option<i64>,
        /// Comma-separated.
        #[arg(long, value_delimiter = ',')]
        candidate_groups: Option<Vec<String>>,
        /// Comma-separated.
        #[arg(long, value_delimiter = ',')]
        candidate_users: Option<Vec<String>>,
    },
    /// Assign a user task to someone (whoever holds it now).
    Assign {
        key: String,
        #[arg(long)]
        assignee: String,
    },
    Claim {
        key: String,
        #[arg(long)]
        assignee: String,
    },
    Unclaim {
        key: String,
    },
    Complete {
        key: String,
        #[command(flatten)]
        variables: VarArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConditionalsCommand {
    /// Start the workflows whose conditional start events the variables make true.
    Evaluate {
        #[command(flatten)]
        variables: VarArgs,
        /// Only this workflow's conditional start events.
        #[arg(long)]
        workflow: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// List open incidents (or --resolved ones, or --all).
    List {
        #[arg(long, conflicts_with = "all")]
        resolved: bool,
        #[arg(long)]
        all: bool,
        /// Only this instance's incidents.
        #[arg(long)]
        instance: Option<String>,
        /// With --instance: the incidents of the instances it called too, directly or further down.
        #[arg(long, requires = "instance")]
        descendants: bool,
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Resolve {
        key: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a database's structure while no server holds it: print `ok`, or every problem found (exit 1).
    Check {
        #[arg(long, env = "BATON_DB", default_value = "sqlite://baton.db")]
        db: String,
        /// Also match every index to its table (SQLite's integrity_check); slower.
        #[arg(long)]
        full: bool,
        /// A damaged SQLite file: rebuild it from its tables, when the damage
        /// is in indexes or unused pages (the damaged file is kept beside it,
        /// as FILE.damaged); damage in the tables themselves needs a backup.
        /// No server may be running on the file.
        #[arg(long, conflicts_with = "full")]
        repair: bool,
    },
    /// Check BPMN files: print every problem with its code, element and line:column.
    Validate {
        /// BPMN files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the DMN TCK's test cases (folders of *.dmn models and *-test-*.xml files) and print each result and the totals.
    DmnTck {
        /// The folder holding them (for example ../shared/dmn-tck).
        dir: PathBuf,
        /// Print only the failures (and the totals).
        #[arg(long)]
        failures: bool,
    },
    /// Run scenario files (*.yaml) against the engine with a virtual clock.
    Test {
        /// Scenario files or folders holding them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print one JSON object per scenario instead of text.
        #[arg(long)]
        json: bool,
        /// What an error end event nobody catches does: fail the instance (Baton's default), or raise an incident (Camunda 8's way).
        #[arg(long, value_enum, default_value = "fail")]
        uncaught_errors: UncaughtErrors,
    },
    /// Run the server: the REST API on a durable store.
    Serve {
        /// Where state lives: sqlite://FILE (created if missing) or memory.
        #[arg(long, env = "BATON_DB", default_value = "sqlite://baton.db")]
        db: String,
        /// What an error end event nobody catches does in instances started from now on: fail the instance (the default), or raise an incident (Camunda 8's way).
        #[arg(long, value_enum, env = "BATON_UNCAUGHT_ERRORS", default_value = "fail")]
        uncaught_errors: UncaughtErrors,
        /// The address to listen on.
        #[arg(long, env = "BATON_LISTEN", default_value = "127.0.0.1:7444")]
        listen: SocketAddr,
        /// Also serve the Zeebe gateway's gRPC service (for Zeebe's gRPC clients) on this address, e.g. 127.0.0.1:26500.
        #[arg(long, env = "BATON_GRPC_LISTEN", value_name = "ADDR")]
        grpc_listen: Option<SocketAddr>,
        /// How long ended instances are kept with their history before they are deleted: an ISO 8601 duration (P30D, PT12H) or `forever`. A workflow's `baton:retention` process property overrides it.
        #[arg(long, env = "BATON_RETENTION", default_value = "forever", value_name = "DURATION")]
        retention: String,
        /// When a SQLite file's structure is checked: before the server listens (a damaged file is refused), or beside, while it serves (the start does not wait for a large file to be read; damage found makes the server not ready and refuses writes).
        #[arg(long, env = "BATON_INTEGRITY_CHECK", value_enum, default_value = "before")]
        integrity_check: serve::IntegrityCheck,
        /// Most running instances kept decoded in memory between commands
        /// (about 8 KB each for a small process); 0 reads every one from the store.
        #[arg(long, env = "BATON_INSTANCE_CACHE", default_value_t = runtime::Options::default().cache_capacity)]
        instance_cache: usize,
        /// An origin whose web pages may call the API (scheme://host[:port]); repeatable. None by default.
        #[arg(long = "cors-origin", value_name = "ORIGIN")]
        cors_origins: Vec<String>,
        /// none (only on a loopback address) or token (API tokens, see `baton tokens`).
        #[arg(long, env = "BATON_AUTH", value_enum, default_value = "none")]
        auth: serve::AuthMode,
        /// With --auth none, listen on a non-loopback address anyway (anyone who reaches it may do anything).
        #[arg(long)]
        insecure: bool,
        /// Instances one client (token holder) may start per second.
        #[arg(long, default_value_t = api::limits::LimitSettings::default().starts_per_second)]
        max_starts_per_second: f64,
        /// Messages one client may publish per second.
        #[arg(long, default_value_t = api::limits::LimitSettings::default().publications_per_second)]
        max_publications_per_second: f64,
        /// Long polls one client may hold at once.
        #[arg(long, default_value_t = api::limits::LimitSettings::default().polls_at_once)]
        max_polls_per_client: usize,
        /// Long polls all clients together may hold at once; more are answered 429 too-many-polls.
        #[arg(long, default_value_t = api::limits::LimitSettings::default().polls_in_all)]
        max_polls: usize,
        /// Client connections served at once; more are answered 503 too-many-connections at once. Default: what the open-file limit allows, less a reserve for the database.
        #[arg(long, env = "BATON_MAX_CONNECTIONS")]
        max_connections: Option<usize>,
        /// Bytes of request bodies served at once, all clients together (a body sent without its length counts as 1 MiB); beyond it requests are answered 503 overloaded with Retry-After.
        #[arg(long, default_value_t = api::limits::LimitSettings::default().body_bytes_in_all)]
        max_body_bytes_in_flight: usize,
        /// With --auth oidc: the issuer's URL (its /.well-known/openid-configuration names its keys).
        #[arg(long, env = "BATON_OIDC_ISSUER")]
        oidc_issuer: Option<String>,
        /// With --auth oidc: the audience tokens must be for (`aud`).
        #[arg(long, env = "BATON_OIDC_AUDIENCE")]
        oidc_audience: Option<String>,
        /// The claim (a dotted path) that holds the holder's name.
        #[arg(long, default_value = "preferred_username")]
        oidc_name_claim: String,
        /// The claim (a dotted path, such as realm_access.roles) that holds Baton roles.
        #[arg(long, default_value = "roles")]
        oidc_roles_claim: String,
        /// The claim that holds the holder's groups (user tasks' candidate groups).
        #[arg(long, default_value = "groups")]
        oidc_groups_claim: String,
        /// The claim that holds the tenants the holder reaches (`*`: every one); without it, the default tenant.
        #[arg(long, default_value = "tenants")]
        oidc_tenants_claim: String,
        /// With --auth oidc: the console signs users in at the issuer as this public client
        /// (authorization code with PKCE; register <server>/console/ as its redirect URI).
        #[arg(long, env = "BATON_OIDC_CONSOLE_CLIENT_ID")]
        oidc_console_client_id: Option<String>,
        /// The scopes the console asks the issuer for.
        #[arg(long, default_value = "openid profile")]
        oidc_console_scopes: String,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(
            long,
            env = "BATON_TLS_CERT",
            requires = "tls_key",
            value_name = "FILE"
        )]
        tls_cert: Option<PathBuf>,
        /// The private key (PEM) of --tls-cert.
        #[arg(
            long,
            env = "BATON_TLS_KEY",
            requires = "tls_cert",
            value_name = "FILE"
        )]
        tls_key: Option<PathBuf>,
    },
    /// Deploy BPMN files, and Camunda Forms (`*.form`) their user tasks link, all or nothing.
    Deploy {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Start an instance of a workflow; prints its id.
    Start {
        /// The workflow's key (its BPMN process id).
        workflow: String,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        variables: VarArgs,
        #[arg(long)]
        business_key: Option<String>,
        /// Makes the start idempotent: the same id gives the same instance.
        #[arg(long)]
        request_id: Option<String>,
        /// A label: name=value, kept apart from the variables and searchable. Repeatable.
        #[arg(long = "label", value_name = "NAME=VALUE")]
        labels: Vec<String>,
    },
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// Deployed forms.
    #[command(subcommand)]
    Forms(FormsCommand),
    /// Deployed DMN decisions.
    #[command(subcommand)]
    Decisions(DecisionsCommand),
    /// Evaluate a deployed DMN decision with variables; prints its result, version and the rules that matched.
    Decide {
        /// The decision's id.
        decision_id: String,
        #[command(flatten)]
        variables: VarArgs,
        /// A version (the latest by default).
        #[arg(long)]
        version: Option<u32>,
    },
    #[command(subcommand)]
    Instances(InstancesCommand),
    #[command(subcommand)]
    Jobs(JobsCommand),
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Publish a message.
    Publish {
        name: String,
        /// The correlation key.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        variables: VarArgs,
        /// How long the message waits for a subscriber (ISO 8601, for example PT1H).
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        message_id: Option<String>,
    },
    /// Broadcast a signal.
    Signal {
        name: String,
        #[command(flatten)]
        variables: VarArgs,
    },
    #[command(subcommand)]
    Conditionals(ConditionalsCommand),
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    #[command(subcommand)]
    Timers(TimersCommand),
    #[command(subcommand)]
    Tokens(TokensCommand),
    #[command(subcommand)]
    Messages(MessagesCommand),
    #[command(subcommand)]
    Subscriptions(SubscriptionsCommand),
    /// Whether the server is up and ready (its commit loop running, its store answering).
    Health,
    /// Who your token says you are: name, roles, tenants, groups, and the routes you may call.
    Whoami,
    /// How the server lets people in: no authentication, API tokens, or OpenID Connect (and the console's sign-in settings).
    SignIn,
    /// Print the server's OpenAPI document.
    Openapi,
    /// Print the server's Prometheus metrics.
    Metrics,
    /// Copy the server's SQLite database into FILE while it runs (admins): `baton serve --db sqlite://FILE` starts from it.
    Backup {
        /// The new file (refused if it exists).
        file: PathBuf,
    },
    /// Measure throughput and latency end to end, checking every instance.
    Bench {
        #[arg(long, value_enum)]
        workload: bench::Workload,
        #[arg(long, value_enum, default_value = "sqlite")]
        store: bench::BenchStore,
        /// With --store postgres: the database (postgres://USER@HOST/DATABASE); each run works in a new schema of it.
        #[arg(long, env = "BATON_BENCH_POSTGRES")]
        postgres: Option<String>,
        /// With --store postgres: run this many nodes on the one database, in this process, with starters and workers spread over them.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        #[arg(long, value_enum, default_value = "embedded")]
        mode: bench::Mode,
        #[arg(long, default_value_t = 1000)]
        instances: usize,
        /// Offer load at this many instances per second instead of as fast as possible.
        #[arg(long)]
        rate: Option<f64>,
        /// A closed loop: keep this many instances in flight, each start
        /// waiting until an instance ends (latency at a load the server
        /// keeps up with, not time in a queue).
        #[arg(long, conflicts_with = "rate")]
        in_flight: Option<usize>,
        /// Run this many instances first, the same way, and measure only what follows.
        #[arg(long, default_value_t = 0)]
        warmup: usize,
        /// Run the starters and workers in a process of their own (with
        /// --mode http or camunda-rest), so the server's CPU is measured
        /// apart from theirs: the headline figure.
        #[arg(long)]
        separate: bool,
        /// With --mode http: the workers complete each batch of jobs they
        /// took in one request (POST /v1/jobs/report, as `baton worker`
        /// does), not one request per job.
        #[arg(long)]
        batched_reports: bool,
        /// With --store sqlite: make the database in this folder (new or
        /// empty), as FOLDER/bench.db, and keep it after the run, to look
        /// at or serve again (`baton serve --db sqlite://FOLDER/bench.db`);
        /// without it the run's file is in a temporary folder, removed at the end.
        #[arg(long, value_name = "FOLDER")]
        keep: Option<std::path::PathBuf>,
        /// With --store sqlite or postgres: also print what the run left in
        /// the database, table by table and index by index (rows or entries
        /// and bytes per instance), beside what it wrote per instance.
        #[arg(long)]
        report: bool,
        /// The clients' side of --separate: drive instances against these
        /// servers (comma-separated) and print the time and CPU they took.
        #[arg(long, hide = true, value_delimiter = ',')]
        drive_server: Vec<String>,
        /// With --drive-server: the index of the first instance.
        #[arg(long, hide = true, default_value_t = 0)]
        drive_first: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Work on jobs of a type by running a command per job.
    Worker {
        #[arg(long = "type")]
        job_type: String,
        /// Jobs run at once.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// How long a job stays with this worker before it may go to another (ms).
        #[arg(long, default_value_t = 300_000)]
        lease_ms: i64,
        /// The worker's name, recorded on the jobs it takes.
        #[arg(long)]
        name: Option<String>,
        /// Stop after this many jobs.
        #[arg(long)]
        max_jobs: Option<usize>,
        /// The command and its arguments, after `--`.
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
}

/// `baton check`: 0 and `ok` when the database is sound; 1 with every problem otherwise.
fn check(db: &str, full: bool) -> i32 {
    let checked = serve::parse_database(db).and_then(|database| database.check(full));
    match checked {
        Ok(problems) if problems.is_empty() => {
            say!("ok");
            0
        }
        Ok(problems) => {
            for problem in &problems {
                say!("{problem}");
            }
            eprintln!("baton: {} problem(s) found in {db}; `baton check --db {db} --repair` rebuilds it when the damage is in indexes; otherwise restore it from a backup, or move it aside to start empty", problems.len());
            1
        }
        Err(message) => {
            eprintln!("baton: {message}");
            1
        }
    }
}

fn repair(db: &str) -> i32 {
    let repaired = match serve::parse_database(db) {
        Ok(serve::Database::Sqlite(path)) if !path.exists() => Err(format!("{} does not exist", path.display())),
        Ok(serve::Database::Sqlite(path)) => store_sqlite::repair_file(&path).map_err(|e| format!("{db}: {e}")),
        Ok(_) => Err("--repair rebuilds a SQLite file; restore a PostgreSQL database with its own tools".to_string()),
        Err(message) => Err(message),
    };
    match repaired {
        Ok(store_sqlite::Repair::Sound) => {
            say!("ok");
            0
        }
        Ok(store_sqlite::Repair::Rebuilt { kept }) => {
            say!("rebuilt from its tables: every row is in the new file, which passed the full check; the damaged file is kept as {}", kept.display());
            0
        }
        Err(message) => {
            eprintln!("baton: {message}");
            1
        }
    }
}

/// Runs a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate { files, json } => validate::run(&files, json),
        Command::Test { paths, json, uncaught_errors } => test(&paths, json, uncaught_errors),
        Command::DmnTck { dir, failures } => tck::run(&dir, failures),
        Command::Check { db, repair: true, .. } => repair(&db),
        Command::Check { db, full, repair: false } => check(&db, full),
        command => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("baton: cannot start: {e}");
                    return 1;
                }
            };
            let connection = Connection {
                server: cli.server,
                actor: cli.actor,
                token: cli.token,
                ca_cert: cli.ca_cert,
                tenant: cli.tenant,
            };
            match runtime.block_on(run_async(connection, command)) {
                Ok(()) => 0,
                Err(Failure(message)) => {
                    eprintln!("baton: {message}");
                    1
                }
            }
        }
    }
}

/// How the client commands reach the server, and as whom.
struct Connection {
    server: String,
    actor: Option<String>,
    token: Option<String>,
    ca_cert: Option<PathBuf>,
    tenant: Option<String>,
}

async fn run_async(connection: Connection, command: Command) -> Result<(), Failure> {
    let Connection {
        server,
        actor,
        token,
        ca_cert,
        tenant,
    } = connection;
    let client = Client::new(&server)
        .trusting(ca_cert.as_deref())?
        .acting_as(actor)?
        .with_token(token)?
        .in_tenant(tenant);
    match command {
        Command::Validate { .. } | Command::Test { .. } | Command::DmnTck { .. } | Command::Check { .. } => {
            unreachable!("run() handles the offline commands")
        }
        Command::Serve {
            db,
            uncaught_errors,
            listen,
            grpc_listen,
            retention,
            integrity_check,
            instance_cache,
            cors_origins,
            auth,
            insecure,
            max_starts_per_second,
            max_publications_per_second,
            max_polls_per_client,
            max_polls,
            max_connections,
            max_body_bytes_in_flight,
            tls_cert,
            tls_key,
            oidc_issuer,
            oidc_audience,
            oidc_name_claim,
            oidc_roles_claim,
            oidc_groups_claim,
            oidc_tenants_claim,
            oidc_console_client_id,
            oidc_console_scopes,
        } => {
            let database = serve::parse_database(&db).map_err(Failure)?;
            let retention_ms = runtime::retention_ms(&retention).map_err(|why| Failure(format!("--retention: {why}")))?;
            let options = runtime::Options {
                cache_capacity: instance_cache,
                retention_ms,
                uncaught_errors_incident: uncaught_errors == UncaughtErrors::Incident,
                ..runtime::Options::default()
            };
            let rate = |name: &str, value: f64| {
                if value.is_finite() && value >= 1.0 {
                    Ok(value)
                } else {
                    Err(Failure(format!("--{name} must be at least 1")))
                }
            };
            if max_polls_per_client == 0 {
                return Err(Failure("--max-polls-per-client must be at least 1".into()));
            }
            let limits = api::limits::LimitSettings {
                starts_per_second: rate("max-starts-per-second", max_starts_per_second)?,
                publications_per_second: rate(
                    "max-publications-per-second",
                    max_publications_per_second,
                )?,
                polls_at_once: max_polls_per_client,
                polls_in_all: max_polls.max(1),
                max_connections: serve::connection_cap(max_connections).map_err(Failure)?,
                body_bytes_in_all: if max_body_bytes_in_flight >= api::DEPLOY_LIMIT {
                    max_body_bytes_in_flight
                } else {
                    return Err(Failure(format!("--max-body-bytes-in-flight must be at least {} (one deployment's most)", api::DEPLOY_LIMIT)));
                },
            };
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => {
                    Some(api::tls::server_config(&cert, &key).map_err(Failure)?)
                }
                _ => None,
            };
            let claims = api::oidc::Claims {
                name: oidc_name_claim,
                roles: oidc_roles_claim,
                groups: oidc_groups_claim,
                tenants: oidc_tenants_claim,
            };
            let oidc = match (oidc_issuer, oidc_audience) {
                (Some(issuer), Some(audience)) => Some(serve::OidcOptions {
                    issuer,
                    audience,
                    claims,
                    console_client: oidc_console_client_id.map(|id| (id, oidc_console_scopes)),
                }),
                _ => None,
            };
            let door = serve::DoorOptions {
                cors_origins,
                auth,
                insecure,
                limits,
                oidc,
                tls,
                grpc_listen,
            };
            serve::serve(database, listen, door, options, integrity_check)
                .await
                .map_err(Failure)
        }
        Command::Deploy { files } => commands::deploy(&client, &files).await,
        Command::Start {
            workflow,
            version,
            variables,
            business_key,
            request_id,
            labels,
        } => {
            let variables = commands::variables(&variables.vars, variables.vars_json.as_deref())?;
            let labels = commands::labels(&labels)?;
            commands::start(
                &client,
                commands::StartArgs {
                    workflow,
                    version,
                    variables,
                    business_key,
                    request_id,
                    labels,
                },
            )
            .await
        }
        Command::Instances(command) => match command {
            InstancesCommand::List { filter, json } => {
                commands::list_instances(&client, *filter, json).await
            }
            InstancesCommand::Counts { workflow, version, json } => {
                commands::count_instances(&client, workflow, version, json).await
            }
            InstancesCommand::Show { id, json } => {
                commands::show_instance(&client, &id, json).await
            }
            InstancesCommand::History { id, filter, json } => {
                commands::history(&client, &id, filter, json).await
            }
            InstancesCommand::Keep { id, until, forever: _, reason } => {
                commands::instance_command(&client, &id, "keep", serde_json::json!({"until": until, "reason": reason})).await
            }
            InstancesCommand::Delete { ids, reason } => {
                for id in &ids {
                    commands::instance_command(&client, id, "delete", serde_json::json!({"reason": reason})).await?;
                }
                Ok(())
            }
            InstancesCommand::Cancel { id, reason } => {
                commands::instance_command(
                    &client,
                    &id,
                    "cancel",
                    serde_json::json!({"reason": reason}),
                )
                .await
            }
            InstancesCommand::Suspend { id, reason } => {
                commands::instance_command(
                    &client,
                    &id,
                    "suspend",
                    serde_json::json!({"reason": reason}),
                )
                .await
            }
            InstancesCommand::Resume { id, reason } => {
                commands::instance_command(
                    &client,
                    &id,
                    "resume",
                    serde_json::json!({"reason": reason}),
                )
                .await
            }
            InstancesCommand::Variables {
                id,
                variables,
                reason,
            } => {
                let variables =
                    commands::variables(&variables.vars, variables.vars_json.as_deref())?;
                if variables.is_empty() {
                    return Err(Failure(
                        "name a variable to set: --var name=value or --vars-json".into(),
                    ));
                }
                commands::instance_command(
                    &client,
                    &id,
                    "variables",
                    serde_json::json!({"variables": variables, "reason": reason}),
                )
                .await
            }
            InstancesCommand::Labels {
                id,
                set,
                remove,
                reason,
            } => {
                let mut labels: serde_json::Map<String, serde_json::Value> =
                    commands::labels(&set)?
                        .into_iter()
                        .map(|(name, value)| (name, serde_json::Value::String(value)))
                        .collect();
                labels.extend(
                    remove
                        .into_iter()
                        .map(|name| (name, serde_json::Value::Null)),
                );
                if labels.is_empty() {
                    return Err(Failure(
                        "name a label: --set name=value or --remove name".into(),
                    ));
                }
                commands::instance_command(
                    &client,
                    &id,
                    "labels",
                    serde_json::json!({"labels": labels, "reason": reason}),
                )
                .await
            }
            InstancesCommand::Rerun { id, from, reason } => {
                commands::instance_command(
                    &client,
                    &id,
                    "rerun",
                    serde_json::json!({"from": from, "reason": reason}),
                )
                .await
            }
            InstancesCommand::Modify {
                id,
                activate,
                terminate,
                reason,
            } => {
                if activate.is_empty() && terminate.is_empty() {
                    return Err(Failure(
                        "name elements: --activate ELEMENT or --terminate ELEMENT".into(),
                    ));
                }
                let body = serde_json::json!({"activate": activate, "terminate": terminate, "reason": reason});
                commands::instance_command(&client, &id, "modify", body).await
            }
        },
        Command::Jobs(JobsCommand::List { filter, json }) => {
            commands::list_jobs(&client, filter, json).await
        }
        Command::Jobs(JobsCommand::Stream { job_type, worker, window, lease_ms, limit }) => {
            commands::stream_jobs(&client, job_type, worker, window, lease_ms, limit).await
        }
        Command::Jobs(JobsCommand::Activate { job_type, worker, max_jobs, lease_ms, timeout_ms }) => {
            commands::activate_jobs(&client, job_type, worker, max_jobs, lease_ms, timeout_ms).await
        }
        Command::Jobs(JobsCommand::Report { worker, file }) => commands::report_jobs(&client, worker, &file).await,
        Command::Jobs(JobsCommand::Complete {
            key,
            claim,
            variables,
            result_json,
        }) => {
            let variables = commands::variables(&variables.vars, variables.vars_json.as_deref())?;
            let result = match result_json.as_deref().map(serde_json::from_str::<serde_json::Value>) {
                None => serde_json::Value::Null,
                Some(Ok(result)) if result.is_object() => result,
                Some(_) => return Err(Failure("--result-json takes a JSON object, such as {\"activateElements\": [{\"elementId\": \"search\"}]}".into())),
            };
            let body = claim.with(serde_json::json!({"variables": variables, "result": result}));
            commands::job_command(&client, &key, "complete", body).await
        }
        Command::Jobs(JobsCommand::Fail {
            key,
            claim,
            retries,
            message,
            backoff_ms,
            variables,
        }) => {
            let variables = commands::variables(&variables.vars, variables.vars_json.as_deref())?;
            let body = claim.with(serde_json::json!({"retries": retries, "message": message, "backoff_ms": backoff_ms, "variables": variables}));
            commands::job_command(&client, &key, "fail", body).await
        }
        Command::Jobs(JobsCommand::Error {
            key,
            claim,
            code,
            message,
            variables,
        }) => {
            let variables = commands::variables(&variables.vars, variables.vars_json.as_deref())?;
            let body = claim.with(
                serde_json::json!({"code": code, "message": message, "variables": variables}),
            );
            commands::job_command(&client, &key, "error", body).await
        }
        Command::Workflows(WorkflowsCommand::List { json }) => {
            commands::list_workflows(&client, json).await
        }
        Command::Workflows(WorkflowsCommand::Show { key, version, xml }) => {
            commands::show_workflow(&client, &key, version, xml).await
        }
        Command::Decisions(DecisionsCommand::List { decision_id, json }) => {
            commands::list_decisions(&client, decision_id, json).await
        }
        Command::Decisions(DecisionsCommand::Show { decision_id, version, xml }) => {
            commands::show_decision(&client, &decision_id, version, xml).await
        }
        Command::Decide { decision_id, variables, version } => {
            let variables = commands::variables(&variables.vars, variables.vars_json.as_deref())?;
            commands::decide(&client, &decision_id, variables, version).await
        }
        Command::Forms(FormsCommand::List { form_id, json }) => {
            commands::list_forms(&client, form_id, json).await
        }
        Command::Forms(FormsCommand::Show { form_id, version }) => {
            commands::show_form(&client, &form_id, version).await
        }
        Command::Health => {
            commands::show(&client, "/healthz").await?;
            commands::show(&client, "/readyz").await
        }
        Command::Whoami => commands::show(&client, "/v1/me").await,
        Command::SignIn => commands::show(&client, "/v1/sign-in").await,
        Command::Openapi => commands::show(&client, "/v1/openapi.json").await,
        Command::Tokens(TokensCommand::Create { token, db }) => {
            tokens::create(&client, db, token).await
        }
        Command::Tokens(TokensCommand::List { db, json }) => tokens::list(&client, db, json).await,
        Command::Tokens(TokensCommand::Revoke { id, db }) => tokens::revoke(&client, db, &id).await,
        Command::Timers(TimersCommand::List {
            instance,
            due_before,
            json,
        }) => commands::list_timers(&client, instance, due_before, json).await,
        Command::Timers(TimersCommand::Reschedule {
            key,
            due_at,
            reason,
        }) => commands::reschedule_timer(&client, &key, &due_at, reason).await,
        Command::Messages(MessagesCommand::List {
            undelivered,
            name,
            json,
        }) => commands::list_messages(&client, undelivered, name, json).await,
        Command::Subscriptions(SubscriptionsCommand::List {
            instance,
            kind,
            name,
            json,
        }) => commands::list_subscriptions(&client, instance, kind, name, json).await,
        Command::Metrics => commands::show(&client, "/metrics").await,
        Command::Backup { file } => {
            if file.exists() {
                return Err(Failure(format!("{} exists; give a new file", file.display())));
            }
            let size = client.download("/v1/backup", &file).await?;
            eprintln!("baton: backup of {size} bytes in {}; start a server on it with --db sqlite://{}", file.display(), file.display());
            Ok(())
        }
        Command::Jobs(JobsCommand::Retries {
            key,
            retries,
            reason,
        }) => commands::job_retries(&client, &key, retries, reason).await,
        Command::Tasks(command) => match command {
            TasksCommand::List { filter, json } => {
                commands::list_tasks(&client, filter, json).await
            }
            TasksCommand::Show { key } => commands::show_task(&client, &key).await,
            TasksCommand::Form { key } => commands::show_task_form(&client, &key).await,
            TasksCommand::Update { key, due, follow_up, priority, candidate_groups, candidate_users } => {
                // `--candidate-groups ""` clears the list.
                let list = |items: Option<Vec<String>>| items.map(|i| i.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>());
                let body = serde_json::json!({
                    "due": due,
                    "follow_up": follow_up,
                    "priority": priority,
                    "candidate_groups": list(candidate_groups),
                    "candidate_users": list(candidate_users),
                });
                commands::task_command(&client, &key, "update", body).await
            }
            TasksCommand::Assign { key, assignee } => {
                commands::task_command(
                    &client,
                    &key,
                    "assign",
                    serde_json::json!({"assignee": assignee}),
                )
                .await
            }
            TasksCommand::Claim { key, assignee } => {
                commands::task_command(
                    &client,
                    &key,
                    "claim",
                    serde_json::json!({"assignee": assignee}),
                )
                .await
            }
            TasksCommand::Unclaim { key } => {
                commands::task_command(&client, &key, "unclaim", serde_json::json!({})).await
            }
            TasksCommand::Complete { key, variables } => {
                let variables =
                    commands::variables(&variables.vars, variables.vars_json.as_deref())?;
                commands::task_command(
                    &client,
                    &key,
                    "complete",
                    serde_json::json!({"variables": variables}),
                )
                .await
            }
        },
        Command::Publish {
            name,
            key,
            variables,
            ttl,
            message_id,
        } => {
            let variables = commands::variables(&variables.vars, variables.vars_json.as_deref())?;
            let ttl_ms = match ttl {
                Some(text) => {
                    let span = bpmn::timer::parse_duration(&text).map_err(Failure)?;
                    bpmn::timer::add(0, span).map_err(Failure)?
                }
                None => 0,
            };
            commands::publish(&client, &name, key, variables, ttl_ms, message_id).await
        }
        Command::Signal { name, variables } => {
            let variables = commands::variables(&variables.vars, variables.vars_json.as_deref())?;
            commands::signal(&client, &name, variables).await
        }
        Command::Conditionals(ConditionalsCommand::Evaluate { variables, workflow }) => {
            let variables = commands::variables(&variables.vars, variables.vars_json.as_deref())?;
            commands::evaluate_conditionals(&client, variables, workflow).await
        }
        Command::Bench {
            workload,
            store,
            postgres,
            nodes,
            mode,
            instances,
            rate,
            in_flight,
            warmup,
            separate,
            batched_reports,
            keep,
            report,
            drive_server,
            drive_first,
            json,
        } => {
            if nodes == 0 || (nodes > 1 && store != bench::BenchStore::Postgres) {
                return Err(Failure("--nodes takes 1, or more with --store postgres (the SQLite and memory stores have one writer)".into()));
            }
            if instances == 0 {
                return Err(Failure("--instances must be at least 1".into()));
            }
            if rate.is_some_and(|r| r <= 0.0 || r.is_nan()) {
                return Err(Failure(
                    "--rate must be a positive number of instances per second".into(),
                ));
            }
            if in_flight == Some(0) {
                return Err(Failure("--in-flight must be at least 1".into()));
            }
            if separate && mode == bench::Mode::Embedded {
                return Err(Failure("--separate runs the clients in another process: they need --mode http or camunda-rest".into()));
            }
            if batched_reports && mode != bench::Mode::Http {
                return Err(Failure("--batched-reports needs --mode http: Camunda's API completes one job a request, and embedded workers send no requests".into()));
            }
            if report && store == bench::BenchStore::Memory {
                return Err(Failure("--report reads what the run left in its database: it takes --store sqlite or postgres (the memory store keeps nothing)".into()));
            }
            let options = bench::BenchOptions { workload, store, postgres, nodes, mode, instances, rate, in_flight, warmup, separate, batched_reports, keep, report };
            if !drive_server.is_empty() {
                let driven = bench::drive_against(&drive_server, &options, drive_first).await?;
                say!("{driven}");
                return Ok(());
            }
            eprintln!("baton bench: {instances} instances of {workload:?} after {warmup} to warm up, {store:?} store, {mode:?} mode, {nodes} node(s){}", if separate { ", clients in a process of their own" } else { "" });
            let report = bench::run(options).await?;
            if json {
                say!(
                    "{}",
                    serde_json::to_string(&report).expect("a report serializes")
                );
            } else {
                bench::print(&report);
            }
            Ok(())
        }
        Command::Incidents(IncidentsCommand::List {
            resolved,
            all,
            instance,
            descendants,
            workflow,
            json,
        }) => {
            let state = if all {
                "all"
            } else if resolved {
                "resolved"
            } else {
                "open"
            };
            commands::list_incidents(&client, state, instance, descendants, workflow, json).await
        }
        Command::Incidents(IncidentsCommand::Resolve { key, reason }) => {
            commands::resolve_incident(&client, &key, reason).await
        }
        Command::Worker {
            job_type,
            concurrency,
            lease_ms,
            name,
            max_jobs,
            command,
        } => {
            if concurrency == 0 {
                return Err(Failure("--concurrency must be at least 1".into()));
            }
            let name = name.unwrap_or_else(|| format!("baton-worker-{}", std::process::id()));
            worker::run(
                client,
                worker::WorkerOptions {
                    job_type,
                    name,
                    concurrency,
                    lease_ms,
                    command,
                    max_jobs,
                },
            )
            .await
        }
    }
}

fn test(paths: &[PathBuf], json: bool, uncaught_errors: UncaughtErrors) -> i32 {
    let options = scenario::RunOptions { uncaught_errors_incident: uncaught_errors == UncaughtErrors::Incident };
    let files = match scenario::collect(paths) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("baton test: {message}");
            return 2;
        }
    };
    if files.is_empty() {
        eprintln!("baton test: no scenario files (*.yaml) under the given paths");
        return 2;
    }
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        for outcome in scenario::run_file_with(file, options) {
            if outcome.passed {
                passed += 1;
            } else {
                failed += 1;
            }
            if json {
                say!(
                    "{}",
                    serde_json::to_string(&outcome).expect("an outcome serializes")
                );
            } else {
                say!("{}", outcome.line());
            }
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    if json {
        eprintln!("{summary}");
    } else {
        say!("{summary}");
    }
    i32::from(failed > 0)
}

/// Writes one line of data to stdout; a closed pipe ends the process with
/// success, as the reader has all it wanted.
pub fn write_stdout(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("baton: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}
