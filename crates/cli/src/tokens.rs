//! `baton tokens`: API tokens, through the server (for admins) or, with
//! `--db`, on a database file no server holds (to create the first ones, or
//! to get back in).

use serde_json::{json, Value};
use store::{Store, Write};

use crate::client::{encode, Client, Failure};
use crate::serve::{parse_database, Database};

/// What a new token may do.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The holder's name, recorded as the actor of what it does.
    #[arg(long)]
    name: String,
    /// admin, developer, operator, worker, starter, user or viewer. Repeatable.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// For a worker: the only job types it may take. Repeatable.
    #[arg(long = "job-type")]
    job_types: Vec<String>,
    /// For a starter or user: the only workflows it may start. Repeatable.
    #[arg(long = "workflow")]
    workflows: Vec<String>,
    /// A candidate group the holder belongs to (user tasks). Repeatable.
    #[arg(long = "group")]
    groups: Vec<String>,
    /// The tenants it reaches, comma-separated (`*`: every one); the default tenant when left out.
    #[arg(long = "tenants", value_delimiter = ',')]
    tenants: Vec<String>,
    /// For a viewer: hide variable values.
    #[arg(long)]
    hide_variables: bool,
    /// When it stops working (RFC 3339).
    #[arg(long)]
    expires_at: Option<String>,
}

impl TokenArgs {
    fn request(self) -> api::access::TokenRequest {
        let some = |list: Vec<String>| (!list.is_empty()).then_some(list);
        api::access::TokenRequest {
            name: self.name,
            roles: self.roles,
            job_types: some(self.job_types),
            workflows: some(self.workflows),
            groups: self.groups,
            tenants: self.tenants,
            hide_variables: self.hide_variables,
            expires_at: self.expires_at,
        }
    }
}

fn offline(db: &str) -> Result<store_sqlite::SqliteStore, Failure> {
    match parse_database(db).map_err(Failure)? {
        Database::Sqlite(path) => store_sqlite::SqliteStore::open(&path).map_err(|e| Failure(format!("cannot open {}: {e}", path.display()))),
        Database::Memory => Err(Failure("--db memory keeps nothing; give the server's sqlite://FILE, or leave --db out to go through the server".into())),
    }
}

fn now() -> i64 {
    use runtime::Clock;
    runtime::SystemClock.now()
}

/// Creates a token on the file (`--db`) or through the server; prints the token once.
pub async fn create(client: &Client, db: Option<String>, args: TokenArgs) -> Result<(), Failure> {
    let request = args.request();
    let created = match db {
        Some(db) => {
            let store = offline(&db)?;
            let (token, row) = api::access::new_token(request, now()).map_err(Failure)?;
            let taken = store
                .read()
                .and_then(|mut r| r.tokens())
                .map_err(|e| Failure(e.to_string()))?
                .iter()
                .any(|t| t.name == row.name && t.revoked_at.is_none());
            if taken {
                return Err(Failure(format!(
                    "a token named '{}' exists; revoke it first or choose another name",
                    row.name
                )));
            }
            let mut txn = store.write().map_err(|e| Failure(e.to_string()))?;
            txn.apply(Write::PutToken(row.clone()))
                .map_err(|e| Failure(e.to_string()))?;
            txn.commit().map_err(|e| Failure(e.to_string()))?;
            json!({ "id": row.id, "name": row.name, "token": token })
        }
        None => {
            client
                .post(
                    "/v1/tokens",
                    &serde_json::to_value(&request).map_err(|e| Failure(e.to_string()))?,
                )
                .await?
        }
    };
    eprintln!(
        "token {} for {}: keep it now, it is not shown again",
        created["id"].as_str().unwrap_or("?"),
        created["name"].as_str().unwrap_or("?")
    );
    say!("{}", created["token"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn list(client: &Client, db: Option<String>, json_lines: bool) -> Result<(), Failure> {
    let rows: Vec<Value> = match db {
        Some(db) => {
            let store = offline(&db)?;
            let tokens = store
                .read()
                .and_then(|mut r| r.tokens())
                .map_err(|e| Failure(e.to_string()))?;
            tokens
                .iter()
                .map(|t| json!({ "id": t.id, "name": t.name, "roles": t.roles, "tenants": t.tenants, "expires_at": t.expires_at, "revoked_at": t.revoked_at }))
                .collect()
        }
        None => client.get("/v1/tokens").await?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    for row in &rows {
        if json_lines {
            say!("{row}");
        } else {
            let text = |v: &Value| {
                v.as_str().map_or_else(
                    || {
                        if v.is_null() {
                            "-".to_string()
                        } else {
                            v.to_string()
                        }
                    },
                    str::to_string,
                )
            };
            say!(
                "{:<18} {:<20} {:<30} tenants {} expires {} revoked {}",
                text(&row["id"]),
                text(&row["name"]),
                text(&row["roles"]),
                text(&row["tenants"]),
                text(&row["expires_at"]),
                text(&row["revoked_at"])
            );
        }
    }
    Ok(())
}

pub async fn revoke(client: &Client, db: Option<String>, id: &str) -> Result<(), Failure> {
    match db {
        Some(db) => {
            let store = offline(&db)?;
            let tokens = store
                .read()
                .and_then(|mut r| r.tokens())
                .map_err(|e| Failure(e.to_string()))?;
            let mut row = tokens
                .into_iter()
                .find(|t| t.id == id)
                .ok_or_else(|| Failure(format!("token-not-found: token {id} does not exist")))?;
            if row.revoked_at.is_none() {
                row.revoked_at = Some(now());
                let mut txn = store.write().map_err(|e| Failure(e.to_string()))?;
                txn.apply(Write::PutToken(row))
                    .map_err(|e| Failure(e.to_string()))?;
                txn.commit().map_err(|e| Failure(e.to_string()))?;
            }
        }
        None => {
            client
                .post(&format!("/v1/tokens/{}/revoke", encode(id)), &json!({}))
                .await?;
        }
    }
    eprintln!("revoked: {id}");
    Ok(())
}
