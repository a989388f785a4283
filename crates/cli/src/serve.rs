//! `baton serve`: the runtime on a store, behind the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use runtime::{Options, Service, SystemClock, UuidIds};
use store::Store;

/// Where the state lives, from `--db`.
pub enum Database {
    Sqlite(PathBuf),
    Memory,
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
        return Err("PostgreSQL is not available in this version of Baton; use sqlite://FILE".into());
    }
    Err(format!("'{url}' is not a database Baton knows: use sqlite://FILE (the default is sqlite://baton.db) or memory"))
}

pub async fn serve(database: Database, listen: SocketAddr, cors_origins: Vec<String>, options: Options) -> Result<(), String> {
    for origin in &cors_origins {
        let scheme = origin.starts_with("http://") || origin.starts_with("https://");
        if !scheme || origin.ends_with('/') || origin.matches('/').count() != 2 {
            return Err(format!("--cors-origin '{origin}' is not an origin: write scheme://host[:port], for example https://console.example.org"));
        }
    }
    let store: Arc<dyn Store> = match &database {
        Database::Sqlite(path) => Arc::new(store_sqlite::SqliteStore::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?),
        Database::Memory => Arc::new(store::MemoryStore::new()),
    };
    let service = Service::start(store, Arc::new(SystemClock), Box::new(UuidIds), options).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let where_ = match &database {
        Database::Sqlite(path) => format!("sqlite://{}", path.display()),
        Database::Memory => "memory (nothing is kept)".to_string(),
    };
    eprintln!("baton: serving on http://{listen} with {where_}");
    let handle = service.handle.clone();
    let shutdown = async move {
        shutdown_signal().await;
        // Long polls answer now instead of holding the shutdown for their timeout.
        handle.begin_shutdown();
    };
    let security = api::guard::Security { allowed_origins: cors_origins, ..api::guard::Security::for_listener(listen) };
    let served = api::serve(listener, service.handle.clone(), security, shutdown).await;
    // Requests in flight have been answered (after their commits); finish what is queued.
    eprintln!("baton: shutting down");
    tokio::task::spawn_blocking(move || service.stop()).await.map_err(|e| e.to_string())?;
    served.map_err(|e| format!("the server failed: {e}"))
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
