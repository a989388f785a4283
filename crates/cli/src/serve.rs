//! `baton serve`: the runtime on a store, behind the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use runtime::{Options, Service, SystemClock, UuidIds};
use store::Store;

/// Where the state lives, from `--db`.
pub enum Database {
    Sqlite(PathBuf),
    /// A PostgreSQL URL: any number of nodes may share the database.
    Postgres(String),
    Memory,
}

impl Database {
    /// Opens (creating or upgrading) the store. Blocking: call it off the async threads.
    pub fn open(&self) -> Result<Arc<dyn Store>, String> {
        Ok(match self {
            Database::Sqlite(path) => Arc::new(store_sqlite::SqliteStore::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?),
            Database::Postgres(url) => Arc::new(store_postgres::PostgresStore::open(url).map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?),
            Database::Memory => Arc::new(store::MemoryStore::new()),
        })
    }

    /// Checks the database's structure: the problems found (none: sound).
    /// SQLite: `quick` reads every page, full also matches indexes to tables;
    /// PostgreSQL checks its own pages (data checksums, `amcheck`), so here
    /// it is opened, its schema version checked, and nothing more.
    pub fn check(&self, full: bool) -> Result<Vec<String>, String> {
        match self {
            Database::Sqlite(path) if !path.exists() => Err(format!("{} does not exist", path.display())),
            Database::Sqlite(path) => store_sqlite::check_file(path, full).map_err(|e| format!("cannot check {}: {e}", path.display())),
            Database::Postgres(_) => self.open().map(|_| Vec::new()),
            Database::Memory => Err("memory holds nothing to check".into()),
        }
    }

    /// Where it is, for messages (without a password).
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite://{}", path.display()),
            Database::Postgres(url) => store_postgres::shown(url),
            Database::Memory => "memory (nothing is kept)".to_string(),
        }
    }
}

/// When `baton serve` checks a SQLite file's structure (`--integrity-check`).
/// The check (`PRAGMA quick_check`) reads every page: about a second per
/// gigabyte when the file is in the page cache, the disk's read rate when it
/// is not (2 min 41 s for 18.7 GB on the session machine; docs/scaling.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IntegrityCheck {
    /// Before the server listens: a damaged file is refused and nothing is written to it; the start waits for the check.
    Before,
    /// While the server serves, on a read connection of its own: the server answers at once; damage found makes it not ready and refuses every write until it is restarted on a sound file.
    Beside,
}

/// Runs the quick check of the file at `path` on a thread of its own while
/// the server serves; damage found is noted on `handle` (readiness fails,
/// writes are refused) with what to do, and written to the log.
fn check_beside(path: PathBuf, handle: runtime::Handle) -> Result<(), String> {
    let check = move || {
        let began = std::time::Instant::now();
        match store_sqlite::check_file(&path, false) {
            Ok(problems) if problems.is_empty() => {
                eprintln!("baton: the integrity check found {} sound ({:.1} s)", path.display(), began.elapsed().as_secs_f64());
            }
            Ok(problems) => handle.note_damage(&format!(
                "the integrity check found the database file {} damaged ({}); writes are refused until the server is restarted on a sound file: stop it, then {}",
                path.display(),
                problems.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
                how_to_restore(&path)
            )),
            // Not damage that was found: the server goes on as it would without the check.
            Err(error) => eprintln!("baton: the integrity check of {} could not run: {error}", path.display()),
        }
    };
    std::thread::Builder::new().name("baton-check".into()).spawn(check).map(|_| ()).map_err(|e| format!("cannot start the integrity check: {e}"))
}

/// What to say of a damaged SQLite file: what was found, and how to go on.
pub fn damaged(path: &std::path::Path, found: &str) -> String {
    format!("the database file {} is damaged ({found}). Nothing was changed. {}", path.display(), how_to_restore(path))
}

/// What to do with a damaged SQLite file.
fn how_to_restore(path: &std::path::Path) -> String {
    format!(
        "`baton check --db sqlite://{} --repair` rebuilds it from its tables when the damage \
         is in indexes; otherwise restore it from a backup (`baton backup FILE` takes one from a running server), or move it aside to start empty; \
         `baton check --db sqlite://{} --full` lists every problem",
        path.display(),
        path.display()
    )
}

pub fn parse_database(url: &str) -> Result<Database, String> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err("sqlite:// needs a file path, for example sqlite://baton.db".into());
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url == "memory" || url == "memory://" {
        return Ok(Database::Memory);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_string()));
    }
    Err(format!("'{url}' is not a database Baton knows: use sqlite://FILE (the default is sqlite://baton.db), postgres://USER@HOST/DATABASE or memory"))
}

/// How the server authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Nobody: allowed only on a loopback address (or with --insecure).
    None,
    /// API tokens (`baton tokens`).
    Token,
    /// Bearer JWTs from an OpenID Connect issuer (--oidc-issuer, --oidc-audience).
    Oidc,
}

/// Where an OpenID Connect issuer is and what its tokens must say.
#[derive(Clone, Debug)]
pub struct OidcOptions {
    pub issuer: String,
    pub audience: String,
    pub claims: api::oidc::Claims,
    /// The console's client id and scopes, for signing users in at the issuer.
    pub console_client: Option<(String, String)>,
}

/// A JSON document from an issuer.
async fn get_json(http: &reqwest::Client, url: String) -> Result<serde_json::Value, String> {
    let response = http.get(&url).send().await.map_err(|e| format!("cannot reach {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response.json::<serde_json::Value>().await.map_err(|e| format!("{url} did not answer JSON: {e}"))
}

fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// Fetches an issuer's key set: its discovery document names the JWKS.
fn key_fetcher(issuer: String) -> api::oidc::FetchKeys {
    api::tls::install_provider();
    let http = reqwest::Client::new();
    Arc::new(move || {
        let (http, issuer) = (http.clone(), issuer.clone());
        Box::pin(async move {
            let discovery = get_json(&http, discovery_url(&issuer)).await?;
            let jwks = discovery["jwks_uri"].as_str().ok_or_else(|| format!("the issuer {issuer} names no jwks_uri"))?.to_string();
            get_json(&http, jwks).await
        })
    })
}

/// The door's settings from the command line.
pub struct DoorOptions {
    pub cors_origins: Vec<String>,
    pub auth: AuthMode,
    pub insecure: bool,
    pub limits: api::limits::LimitSettings,
    /// With `--auth oidc`: the issuer.
    pub oidc: Option<OidcOptions>,
    /// Serve HTTPS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Also serve the Zeebe gateway's gRPC service here.
    pub grpc_listen: Option<SocketAddr>,
}

pub async fn serve(database: Database, listen: SocketAddr, door: DoorOptions, options: Options, check: IntegrityCheck) -> Result<(), String> {
    let DoorOptions { cors_origins, auth, insecure, limits, oidc, tls, grpc_listen } = door;
    if let (Some(_), Some(address)) = (&tls, grpc_listen.filter(|address| !address.ip().is_loopback())) {
        return Err(format!(
            "--grpc-listen {address}: the Zeebe gateway speaks plain gRPC, and this server uses HTTPS: listen on a loopback address, or put a TLS-terminating proxy in front of it"
        ));
    }
    let exposed = std::iter::once(listen).chain(grpc_listen).find(|address| !address.ip().is_loopback());
    if let (AuthMode::None, Some(listen)) = (auth, exposed) {
        if !insecure {
            return Err(format!(
                "refusing to listen on {listen} without authentication: anyone who reaches it could deploy, start, cancel and read every variable. \
                 Use --auth token (create tokens with `baton tokens create`), listen on 127.0.0.1, or force it with --auth none --insecure"
            ));
        }
        eprintln!("baton: WARNING: listening on {listen} without authentication (--insecure): anyone who reaches it may do anything");
    }
    for origin in &cors_origins {
        let scheme = origin.starts_with("http://") || origin.starts_with("https://");
        if !scheme || origin.ends_with('/') || origin.matches('/').count() != 2 {
            return Err(format!("--cors-origin '{origin}' is not an origin: write scheme://host[:port], for example https://console.example.org"));
        }
    }
    // A damaged SQLite file is refused before anything is written to it.
    if let (Database::Sqlite(path), IntegrityCheck::Before) = (&database, check) {
        if path.exists() {
            let problems = tokio::task::block_in_place(|| database.check(false))?;
            if !problems.is_empty() {
                return Err(damaged(path, &problems.iter().take(3).cloned().collect::<Vec<_>>().join("; ")));
            }
        }
    }
    // Opening a store and reading from it block (PostgreSQL's client most of all): not on the async threads.
    let store: Arc<dyn Store> = tokio::task::block_in_place(|| database.open())?;
    let tokens = match auth {
        AuthMode::Token => Some(Arc::new(tokio::task::block_in_place(|| load_tokens(store.as_ref(), &database))?)),
        AuthMode::None | AuthMode::Oidc => None,
    };
    let oidc = match (auth, oidc) {
        (AuthMode::Oidc, Some(options)) => {
            let fetch = key_fetcher(options.issuer.clone());
            let issuer = options.issuer.clone();
            let connected = api::oidc::Oidc::connect(options.issuer, options.audience, options.claims, fetch).await;
            let mut oidc = connected.map_err(|e| format!("cannot get the keys of the OpenID Connect issuer {issuer}: {e}"))?;
            if let Some((client_id, scopes)) = options.console_client {
                let discovery = get_json(&reqwest::Client::new(), discovery_url(&issuer)).await?;
                let sign_in = api::oidc::SignIn::from_discovery(client_id, scopes, &discovery)
                    .map_err(|e| format!("the console cannot sign users in at {issuer}: {e}"))?;
                oidc.sign_in = Some(sign_in);
            }
            Some(Arc::new(oidc))
        }
        (AuthMode::Oidc, None) => return Err("--auth oidc needs --oidc-issuer and --oidc-audience".into()),
        _ => None,
    };
    // On PostgreSQL other nodes may write the same database.
    let options = Options { shared_store: matches!(database, Database::Postgres(_)), ..options };
    let service = tokio::task::block_in_place(|| Service::start(store, Arc::new(SystemClock), Box::new(UuidIds), options)).map_err(|e| e.to_string())?;
    let listener = api::connections::listen(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    if let (Database::Sqlite(path), IntegrityCheck::Beside) = (&database, check) {
        check_beside(path.clone(), service.handle.clone())?;
    }
    let where_ = database.describe();
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("baton: serving on {scheme}://{listen} with {where_}");
    let handle = service.handle.clone();
    // One signal stops both servers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown_signal().await;
        // Long polls answer now instead of holding the shutdown for their timeout.
        handle.begin_shutdown();
        let _ = stop.send(true);
    };
    let security = api::guard::Security { allowed_origins: cors_origins, tokens, oidc, limits, ..api::guard::Security::for_listener(listen) };
    let grpc = match grpc_listen {
        Some(address) => {
            let listener = api::connections::listen(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
            eprintln!("baton: serving the Zeebe gateway (gRPC) on {address}");
            let mut stopped = stopped.clone();
            let stop = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            Some(tokio::spawn(api::zeebe::serve(listener, service.handle.clone(), security.clone(), stop)))
        }
        None => None,
    };
    let listener = listener.into_std().map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let served = api::serve_with(listener, service.handle.clone(), security, tls, api::HEADER_READ_TIMEOUT, shutdown).await;
    if let Some(grpc) = grpc {
        if served.is_err() {
            // The shutdown signal that stops it will not come: stop it here.
            grpc.abort();
        } else {
            grpc.await.map_err(|e| e.to_string())??;
        }
    }
    // Requests in flight have been answered (after their commits); finish what is queued.
    eprintln!("baton: shutting down");
    tokio::task::spawn_blocking(move || service.stop()).await.map_err(|e| e.to_string())?;
    served.map_err(|e| format!("the server failed: {e}"))
}

/// The tokens of the database; a database without any gets a first admin
/// token, written to a file only its owner may read (one node makes it when
/// several start on a new database together).
fn load_tokens(store: &dyn Store, database: &Database) -> Result<api::access::Tokens, String> {
    let mut rows = store.read().and_then(|mut r| r.tokens()).map_err(|e| e.to_string())?;
    if rows.is_empty() {
        let mut txn = store.write().map_err(|e| e.to_string())?;
        txn.lock(&store::Lock::FirstToken).map_err(|e| e.to_string())?;
        rows = txn.tokens().map_err(|e| e.to_string())?;
        if rows.is_empty() {
            let now = runtime::Clock::now(&SystemClock);
            let request = api::access::TokenRequest { name: "admin".into(), roles: vec!["admin".into()], ..Default::default() };
            let (token, row) = api::access::new_token(request, now)?;
            let file = match database {
                Database::Sqlite(path) => PathBuf::from(format!("{}.admin-token", path.display())),
                Database::Postgres(_) => PathBuf::from("baton-postgres.admin-token"),
                Database::Memory => std::env::temp_dir().join(format!("baton-admin-token-{}", std::process::id())),
            };
            write_private(&file, &format!("{token}\n")).map_err(|e| format!("cannot write the first admin token to {}: {e}", file.display()))?;
            txn.apply(store::Write::PutToken(row.clone())).map_err(|e| e.to_string())?;
            txn.commit().map_err(|e| e.to_string())?;
            eprintln!("baton: a new database: the first admin token is in {} (readable by you only); use it with --token or BATON_TOKEN", file.display());
            rows.push(row);
        }
    }
    let tokens = api::access::Tokens::default();
    tokens.replace(rows);
    Ok(tokens)
}

/// Writes a file only its owner may read or write.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// Descriptors kept for what is not a client connection: the database and
/// its write-ahead log, PostgreSQL's connections, listeners, the log.
const RESERVED_FILES: u64 = 128;

/// How many client connections to serve at once: `asked`, or what the
/// open-file limit allows once raised to its hard maximum, less
/// [`RESERVED_FILES`]. Refuses a cap the limit cannot hold.
pub fn connection_cap(asked: Option<usize>) -> Result<usize, String> {
    let files = raise_open_file_limit();
    let room = files.saturating_sub(RESERVED_FILES).max(1);
    match asked {
        Some(0) => Err("--max-connections must be at least 1".into()),
        Some(n) if n as u64 > room => Err(format!(
            "--max-connections {n} is more than the open-file limit allows ({files} files, {RESERVED_FILES} of them kept for the database): raise `ulimit -n` or ask for at most {room}"
        )),
        Some(n) => Ok(n),
        None => Ok(usize::try_from(room.min(65_536)).unwrap_or(65_536)),
    }
}

/// Raises this process's soft limit on open files to its hard limit (the
/// usual 1 024 is far below what a server needs); returns the limit now.
#[cfg(unix)]
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1_024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> u64 {
    8_192
}
