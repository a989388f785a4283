//! `baton tokens`: API tokens, through the server (for admins) or, with
//! `--db`, on a database file no server holds (to create the first ones, or
//! to get back in).

use serde_json::{json, Value};
use store::{Store, TokenRow, Write};

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

/// Runs `work` on the database `db` names (one no server holds), off the
/// async threads: a store's calls block.
fn offline<T>(db: &str, work: impl FnOnce(&dyn Store) -> Result<T, store::Error>) -> Result<T, Failure> {
    let database = match parse_database(db).map_err(Failure)? {
        Database::Memory => return Err(Failure("--db memory keeps nothing; give the server's sqlite://FILE or postgres:// database, or leave --db out to go through the server".into())),
        database => database,
    };
    tokio::task::block_in_place(|| {
        let store = database.open().map_err(Failure)?;
        work(store.as_ref()).map_err(|e| Failure(e.to_string()))
    })
}

fn put_token(store: &dyn Store, row: TokenRow) -> Result<(), store::Error> {
    let mut txn = store.write()?;
    txn.apply(Write::PutToken(row))?;
    txn.commit()
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
            let (token, row) = api::access::new_token(request, now()).map_err(Failure)?;
            let written = offline(&db, |store| {
                let tokens = store.read()?.tokens()?;
                if tokens.iter().any(|t| t.name == row.name && t.revoked_at.is_none()) {
                    return Ok(false);
                }
                put_token(store, row.clone())?;
                Ok(true)
            })?;
            if !written {
                return Err(Failure(format!(
                    "a token named '{}' exists; revoke it first or choose another name",
                    row.name
                )));
            }
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
            let tokens = offline(&db, |store| store.read()?.tokens())?;
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
            let found = offline(&db, |store| {
                let Some(mut row) = store.read()?.tokens()?.into_iter().find(|t| t.id == id) else {
                    return Ok(false);
                };
                if row.revoked_at.is_none() {
                    row.revoked_at = Some(now());
                    put_token(store, row)?;
                }
                Ok(true)
            })?;
            if !found {
                return Err(Failure(format!("token-not-found: token {id} does not exist")));
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
