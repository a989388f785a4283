//! Who may do what: roles, the principal a token stands for, and the one
//! table that says which roles may call each route ([`ACCESS`]). The door
//! (`guard.rs`) authenticates and checks this table before any handler runs;
//! handlers only narrow further (a worker's job types, a starter's workflows,
//! a user's tasks).

use std::collections::HashMap;
use std::sync::RwLock;

use sha2::{Digest, Sha256};
use store::TokenRow;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Everything, tokens included.
    Admin,
    /// Deploy and read models.
    Developer,
    /// Read instances, incidents and what they wait on; cancel, suspend, resume, modify, retries, rerun, reschedule, set variables and labels, assign tasks.
    Operator,
    /// Take and finish jobs (of its job types, when it has a list).
    Worker,
    /// Start instances (of its workflows, when it has a list), publish messages, broadcast signals.
    Starter,
    /// See and work on the user tasks it may work on; start its workflows.
    User,
    /// Read everything (variable values hidden when the token says so).
    Viewer,
}

impl Role {
    pub const ALL: [Role; 7] = [Role::Admin, Role::Developer, Role::Operator, Role::Worker, Role::Starter, Role::User, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Operator => "operator",
            Role::Worker => "worker",
            Role::Starter => "starter",
            Role::User => "user",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (probes, the API's description).
    Public,
    /// Holders of one of these roles, and admins.
    Roles(&'static [Role]),
}

use Role::*;

const READERS: &[Role] = &[Operator, Viewer];

/// Every route and who may call it. A test walks `crate::ROUTES` against it
/// and against `docs/access.md`, so no route ships without an entry.
pub const ACCESS: &[(&str, &str, Access)] = &[
    ("post", "/v1/workflows", Access::Roles(&[Developer])),
    ("get", "/v1/workflows", Access::Roles(&[Developer, Operator, Viewer])),
    ("get", "/v1/workflows/{key}", Access::Roles(&[Developer, Operator, Viewer])),
    ("get", "/v1/workflows/{key}/versions/{version}", Access::Roles(&[Developer, Operator, Viewer])),
    ("get", "/v1/decisions", Access::Roles(&[Developer, Operator, Viewer])),
    ("get", "/v1/decisions/{decision_id}", Access::Roles(&[Developer, Operator, Viewer])),
    ("post", "/v1/decisions/{decision_id}/evaluate", Access::Roles(&[Developer, Starter])),
    ("get", "/v1/forms", Access::Roles(&[Developer, Operator, Viewer, User])),
    ("get", "/v1/forms/{form_id}", Access::Roles(&[Developer, Operator, Viewer, User])),
    ("post", "/v1/instances", Access::Roles(&[Starter, User])),
    ("get", "/v1/instances", Access::Roles(READERS)),
    ("get", "/v1/instances/counts", Access::Roles(&[Developer, Operator, Viewer])),
    ("get", "/v1/instances/{id}", Access::Roles(READERS)),
    ("get", "/v1/instances/{id}/history", Access::Roles(READERS)),
    ("post", "/v1/instances/{id}/cancel", Access::Roles(&[Operator])),
    ("post", "/v1/instances/{id}/delete", Access::Roles(&[Operator])),
    ("post", "/v1/instances/{id}/keep", Access::Roles(&[Operator])),
    ("post", "/v1/instances/{id}/suspend", Access::Roles(&[Operator])),
    ("post", "/v1/instances/{id}/resume", Access::Roles(&[Operator])),
    ("post", "/v1/instances/{id}/variables", Access::Roles(&[Operator])),
    ("post", "/v1/instances/{id}/labels", Access::Roles(&[Operator])),
    ("post", "/v1/instances/{id}/modify", Access::Roles(&[Operator])),
    ("post", "/v1/instances/{id}/rerun", Access::Roles(&[Operator])),
    ("post", "/v1/jobs/activate", Access::Roles(&[Worker])),
    ("post", "/v1/jobs/stream", Access::Roles(&[Worker])),
    ("post", "/v1/jobs/report", Access::Roles(&[Worker])),
    ("get", "/v1/jobs", Access::Roles(READERS)),
    ("post", "/v1/jobs/{key}/complete", Access::Roles(&[Worker])),
    ("post", "/v1/jobs/{key}/fail", Access::Roles(&[Worker])),
    ("post", "/v1/jobs/{key}/error", Access::Roles(&[Worker])),
    ("post", "/v1/jobs/{key}/retries", Access::Roles(&[Operator])),
    ("get", "/v1/tasks", Access::Roles(&[User, Operator, Viewer])),
    ("get", "/v1/tasks/{key}", Access::Roles(&[User, Operator, Viewer])),
    ("get", "/v1/tasks/{key}/form", Access::Roles(&[User, Operator, Viewer])),
    ("post", "/v1/tasks/{key}/claim", Access::Roles(&[User])),
    ("post", "/v1/tasks/{key}/unclaim", Access::Roles(&[User, Operator])),
    ("post", "/v1/tasks/{key}/assign", Access::Roles(&[Operator])),
    ("post", "/v1/tasks/{key}/update", Access::Roles(&[Operator])),
    ("post", "/v1/tasks/{key}/complete", Access::Roles(&[User])),
    ("post", "/v1/messages", Access::Roles(&[Starter])),
    ("get", "/v1/messages", Access::Roles(READERS)),
    ("post", "/v1/signals", Access::Roles(&[Starter])),
    ("post", "/v1/conditionals/evaluate", Access::Roles(&[Starter])),
    ("get", "/v1/subscriptions", Access::Roles(READERS)),
    ("get", "/v1/timers", Access::Roles(READERS)),
    ("post", "/v1/timers/{key}/reschedule", Access::Roles(&[Operator])),
    ("get", "/v1/incidents", Access::Roles(READERS)),
    ("post", "/v1/incidents/{key}/resolve", Access::Roles(&[Operator])),
    ("post", "/v1/tokens", Access::Roles(&[])),
    ("get", "/v1/tokens", Access::Roles(&[])),
    ("post", "/v1/tokens/{id}/revoke", Access::Roles(&[])),
    ("get", "/v1/backup", Access::Roles(&[])),
    ("get", "/v1/me", Access::Roles(&[Developer, Operator, Worker, Starter, User, Viewer])),
    ("get", "/v1/sign-in", Access::Public),
    ("get", "/v1/openapi.json", Access::Public),
    ("get", "/healthz", Access::Public),
    ("get", "/readyz", Access::Public),
    ("get", "/metrics", Access::Roles(READERS)),
];

/// Whether `path` is a route anyone may call without a token.
pub fn is_public(path: &str) -> bool {
    let v2 = crate::camunda::ROUTES.iter().map(|(_, p, _, access)| (p, access));
    ACCESS.iter().map(|(_, p, access)| (p, access)).chain(v2).any(|(p, access)| *p == path && *access == Access::Public)
}

/// Who may call `method` `path` (a route template); `None` for a route the table lacks.
pub fn access(method: &str, path: &str) -> Option<Access> {
    ACCESS.iter().find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path).map(|(_, _, access)| *access).or_else(|| crate::camunda::access(method, path))
}

/// Who is calling, as their token says.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub name: String,
    pub roles: Vec<Role>,
    pub job_types: Option<Vec<String>>,
    pub workflows: Option<Vec<String>>,
    pub groups: Vec<String>,
    pub hide_variables: bool,
    /// The tenants it reaches; `None`: every one (admins, and `*`).
    pub tenants: store::Tenants,
}

impl Principal {
    /// Whether it may see and act on what belongs to `tenant`.
    pub fn reaches(&self, tenant: &str) -> bool {
        store::reaches(&self.tenants, tenant)
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&Admin) || self.roles.contains(&role)
    }

    pub fn may_call(&self, access: Access) -> bool {
        match access {
            Access::Public => true,
            Access::Roles(roles) => self.roles.contains(&Admin) || roles.iter().any(|r| self.roles.contains(r)),
        }
    }

    /// Whether it may take jobs of this type (a worker with a list, only those).
    pub fn may_work_on(&self, job_type: &str) -> bool {
        self.roles.contains(&Admin) || self.job_types.as_ref().is_none_or(|types| types.iter().any(|t| t == job_type))
    }

    /// Whether it may start this workflow (a starter or user with a list, only those).
    pub fn may_start(&self, workflow: &str) -> bool {
        self.roles.contains(&Admin) || self.workflows.as_ref().is_none_or(|list| list.iter().any(|w| w == workflow))
    }

    /// Whether it may see a user task: its assignee, a candidate (by name or
    /// group), or an operator, viewer or admin.
    pub fn may_see_task(&self, task: &store::TaskRow) -> bool {
        self.has(Operator) || self.has(Viewer) || task.assignee.as_deref() == Some(self.name.as_str()) || self.is_candidate(task)
    }

    /// Whether it may complete a user task: its assignee, or a candidate of
    /// an unassigned one (operators and admins may complete any).
    pub fn may_complete_task(&self, task: &store::TaskRow) -> bool {
        self.has(Operator)
            || task.assignee.as_deref() == Some(self.name.as_str())
            || (task.assignee.is_none() && self.is_candidate(task))
    }

    fn is_candidate(&self, task: &store::TaskRow) -> bool {
        task.candidate_users.contains(&self.name) || task.candidate_groups.iter().any(|g| self.groups.contains(g))
    }

    fn from_token(row: &TokenRow) -> Principal {
        Principal {
            name: row.name.clone(),
            roles: row.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            job_types: row.job_types.clone(),
            workflows: row.workflows.clone(),
            groups: row.groups.clone(),
            hide_variables: row.hide_variables,
            tenants: tenants_reached(row.roles.iter().any(|r| r == Admin.as_str()), &row.tenants),
        }
    }
}

/// The tenant that stands for every tenant in a token's or claim's list.
pub const EVERY_TENANT: &str = "*";

/// The tenants a holder of `tenants` reaches: every one for an admin or a
/// list with `*`; the default tenant for an empty list.
pub fn tenants_reached(admin: bool, tenants: &[String]) -> store::Tenants {
    if admin || tenants.iter().any(|t| t == EVERY_TENANT) {
        None
    } else if tenants.is_empty() {
        Some(vec![store::DEFAULT_TENANT.to_string()])
    } else {
        Some(tenants.to_vec())
    }
}

/// Whether `name` may name a tenant: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn check_tenant(name: &str) -> Result<(), String> {
    let fits = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if fits {
        Ok(())
    } else {
        Err(format!(
            "tenant '{name}' is not a tenant name: 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// A new token: `baton_` and 256 random bits in hex. Returns the token (shown
/// once) and its hash (kept).
pub fn mint() -> Result<(String, String), String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("the system has no randomness to make a token: {e}"))?;
    let token = format!("baton_{}", hex(&secret));
    let hash = hash(&token);
    Ok((token, hash))
}

/// SHA-256 of a token, hex: what the store keeps and looks tokens up by.
/// A fast hash is enough: the secret is 256 random bits, not a password.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of an `Authorization` header value: `Bearer <token>`, or
/// `Basic` with the token as the password (any user name), which is how
/// Camunda's clients send credentials (`CAMUNDA_AUTH_STRATEGY=BASIC`).
pub fn bearer(authorization: Option<&str>) -> Result<String, Refusal> {
    use base64::Engine as _;
    let value = authorization.ok_or(Refusal::Missing)?;
    let token = match (value.strip_prefix("Bearer "), value.strip_prefix("Basic ")) {
        (Some(token), _) => token.trim().to_string(),
        (None, Some(encoded)) => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| Refusal::Unknown)?;
            let text = String::from_utf8(decoded).map_err(|_| Refusal::Unknown)?;
            text.split_once(':').map(|(_, password)| password.to_string()).ok_or(Refusal::Unknown)?
        }
        (None, None) => return Err(Refusal::Missing),
    };
    if token.is_empty() {
        return Err(Refusal::Missing);
    }
    Ok(token)
}

/// Why a request is not authenticated.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Unknown,
    Expired,
    Revoked,
}

/// The tokens the server knows, by hash, kept in memory (a request never
/// reads the store to authenticate) and reloaded after every change made
/// through this server.
#[derive(Default)]
pub struct Tokens {
    by_hash: RwLock<HashMap<String, TokenRow>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes.
        let count = self.by_hash.read().map_or(0, |t| t.len());
        write!(f, "Tokens({count})")
    }
}

impl Tokens {
    pub fn replace(&self, rows: Vec<TokenRow>) {
        let map = rows.into_iter().map(|row| (row.hash.clone(), row)).collect();
        *self.by_hash.write().unwrap_or_else(std::sync::PoisonError::into_inner) = map;
    }

    /// The principal an `Authorization` header value stands for at `now`.
    pub fn authenticate(&self, authorization: Option<&str>, now: i64) -> Result<Principal, Refusal> {
        let token = bearer(authorization)?;
        let tokens = self.by_hash.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let row = tokens.get(&hash(&token)).ok_or(Refusal::Unknown)?;
        if row.revoked_at.is_some() {
            return Err(Refusal::Revoked);
        }
        if row.expires_at.is_some_and(|at| at <= now) {
            return Err(Refusal::Expired);
        }
        Ok(Principal::from_token(row))
    }
}

/// What a new token is for, as an admin asks for it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub job_types: Option<Vec<String>>,
    #[serde(default)]
    pub workflows: Option<Vec<String>>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub hide_variables: bool,
    /// The tenants it reaches (`*`: every one); the default tenant when empty.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// When it stops working (RFC 3339); never when absent.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A new token and the row to keep for it, or why the request is not one.
pub fn new_token(request: TokenRequest, now: i64) -> Result<(String, TokenRow), String> {
    let name = request.name.trim();
    if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err("name: 1 to 128 printable ASCII characters, the holder's name as history records it".into());
    }
    if request.roles.is_empty() {
        return Err(format!("roles: give at least one of {}", Role::ALL.map(Role::as_str).join(", ")));
    }
    if let Some(unknown) = request.roles.iter().find(|r| Role::parse(r).is_none()) {
        return Err(format!("roles: '{unknown}' is not one of {}", Role::ALL.map(Role::as_str).join(", ")));
    }
    let expires_at = match &request.expires_at {
        Some(text) => {
            let at = text.parse::<jiff::Timestamp>().map_err(|_| format!("expires_at '{text}' is not a date and time such as 2027-01-01T00:00:00Z"))?;
            Some(at.as_millisecond())
        }
        None => None,
    };
    if let Some(bad) = request
        .tenants
        .iter()
        .filter(|t| *t != EVERY_TENANT)
        .find_map(|t| check_tenant(t).err())
    {
        return Err(format!("tenants: {bad}"));
    }
    let tenants = if request.tenants.is_empty() {
        vec![store::DEFAULT_TENANT.to_string()]
    } else {
        request.tenants
    };
    let (token, hash) = mint()?;
    let row = TokenRow {
        // The first 16 hex digits of the hash name the token in lists without revealing it.
        id: hash[..16].to_string(),
        name: name.to_string(),
        hash,
        roles: request.roles,
        job_types: request.job_types,
        workflows: request.workflows,
        groups: request.groups,
        tenants,
        hide_variables: request.hide_variables,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    Ok((token, row))
}
