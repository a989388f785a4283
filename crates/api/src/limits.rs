//! Limits per client, so that one cannot starve the others: starts and
//! publications per second (token buckets), and long polls at once; and one
//! for all clients together, the bytes of request bodies being served at
//! once, so that memory is not what runs out first. A client
//! is its token's holder, or, without authentication, everyone together
//! under the name the request declares (`anonymous` by default).
//!
//! These are wall-clock limits at the edge; they never reach the engine,
//! whose work is bounded per input on its own.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::error::ApiError;

/// What one client may do.
#[derive(Clone, Debug)]
pub struct LimitSettings {
    /// Instances one client may start per second (and at once, as a burst).
    pub starts_per_second: f64,
    /// Messages one client may publish per second (and at once).
    pub publications_per_second: f64,
    /// Long polls one client may hold open at once.
    pub polls_at_once: usize,
    /// Long polls all clients together may hold open at once.
    pub polls_in_all: usize,
    /// Connections open at once, all clients together; more are answered 503 at once.
    pub max_connections: usize,
    /// Bytes of request bodies served at once, all clients together (a body
    /// without a declared length counts as the most an endpoint takes, 1 MiB);
    /// a request beyond it is answered 503 `overloaded` before its body is read.
    pub body_bytes_in_all: usize,
}

impl Default for LimitSettings {
    fn default() -> LimitSettings {
        LimitSettings {
            starts_per_second: 5_000.0,
            publications_per_second: 5_000.0,
            polls_at_once: 64,
            polls_in_all: 10_000,
            max_connections: 10_000,
            body_bytes_in_all: 256 * 1024 * 1024,
        }
    }
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// The limits and what they refused.
#[derive(Default)]
pub struct Limits {
    settings: LimitSettings,
    buckets: Mutex<HashMap<(String, &'static str), Bucket>>,
    polls: Mutex<HashMap<String, usize>>,
    /// Bytes of request bodies being served now.
    body_bytes: AtomicUsize,
    refused: [AtomicU64; 5],
}

/// Room for a request's body among those being served; dropping it frees the room.
pub struct BodyPermit {
    limits: Arc<Limits>,
    bytes: usize,
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        self.limits.body_bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A long poll in progress; dropping it frees its place.
pub struct PollPermit {
    limits: Arc<Limits>,
    client: String,
}

impl Drop for PollPermit {
    fn drop(&mut self) {
        let mut polls = self.limits.polls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = polls.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                polls.remove(&self.client);
            }
        }
    }
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Limits {
        Limits { settings, ..Limits::default() }
    }

    fn take(&self, client: &str, what: &'static str, rate: f64, index: usize) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry((client.to_string(), what)).or_insert(Bucket { tokens: rate, refilled: now });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        self.refused[index].fetch_add(1, Ordering::Relaxed);
        Err(ApiError::new("rate-limited", format!("{client} may make {rate} {what} per second; slow down and retry")))
    }

    /// One start by `client`, or `rate-limited`.
    pub fn start(&self, client: &str) -> Result<(), ApiError> {
        self.take(client, "starts", self.settings.starts_per_second, 0)
    }

    /// One publication by `client`, or `rate-limited`.
    pub fn publish(&self, client: &str) -> Result<(), ApiError> {
        self.take(client, "publications", self.settings.publications_per_second, 1)
    }

    /// A place for one more long poll by `client`, or `too-many-polls`.
    pub fn poll(self: &Arc<Self>, client: &str) -> Result<PollPermit, ApiError> {
        let mut polls = self.polls.lock().unwrap_or_else(PoisonError::into_inner);
        let open: usize = polls.values().sum();
        if open >= self.settings.polls_in_all {
            self.refused[3].fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::new(
                "too-many-polls",
                format!("the server holds {open} long polls, the most it takes from all clients together; retry shortly, or poll without waiting"),
            ));
        }
        let count = polls.entry(client.to_string()).or_insert(0);
        if *count >= self.settings.polls_at_once {
            self.refused[2].fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::new(
                "too-many-polls",
                format!("{client} holds {} long polls already, the most one client may; take more jobs per poll instead", self.settings.polls_at_once),
            ));
        }
        *count += 1;
        Ok(PollPermit { limits: self.clone(), client: client.to_string() })
    }

    /// Room for a body of `bytes` among those being served, or `overloaded`.
    pub fn body(self: &Arc<Self>, bytes: usize) -> Result<BodyPermit, ApiError> {
        let most = self.settings.body_bytes_in_all;
        let taken = self.body_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
            held.checked_add(bytes).filter(|&after| after <= most)
        });
        match taken {
            Ok(_) => Ok(BodyPermit { limits: self.clone(), bytes }),
            Err(held) => {
                self.refused[4].fetch_add(1, Ordering::Relaxed);
                Err(ApiError::new(
                    "overloaded",
                    format!("the server is serving requests with {held} bytes of bodies, and this one's {bytes} would pass the {most} it takes at once; retry shortly"),
                ))
            }
        }
    }

    /// The refusals, in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP baton_requests_refused_total Requests refused by the per-client limits and the bytes of bodies served at once.\n# TYPE baton_requests_refused_total counter");
        for (limit, i) in [("starts", 0), ("publications", 1), ("polls", 2), ("polls_in_all", 3), ("body_bytes", 4)] {
            let _ = writeln!(out, "baton_requests_refused_total{{limit=\"{limit}\"}} {}", self.refused[i].load(Ordering::Relaxed));
        }
        let open: usize = self.polls.lock().unwrap_or_else(PoisonError::into_inner).values().sum();
        let _ = writeln!(out, "# HELP baton_long_polls Long polls waiting for jobs now.\n# TYPE baton_long_polls gauge");
        let _ = writeln!(out, "baton_long_polls {open}");
        let _ = writeln!(out, "# HELP baton_request_body_bytes Bytes of request bodies being served now (a body without a declared length counts as 1 MiB).\n# TYPE baton_request_body_bytes gauge");
        let _ = writeln!(out, "baton_request_body_bytes {}", self.body_bytes.load(Ordering::Relaxed));
    }
}

/// The weight of a request's body: its declared length, or, when it
/// declares none and may carry one, the most an endpoint reads of a body.
/// (Every endpoint stops reading at its own limit, so a larger declared
/// length is refused there: it counts as the largest any endpoint takes.)
fn body_weight(request: &axum::extract::Request) -> usize {
    use axum::http::Method;
    let declared = request.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    match declared {
        Some(length) => length.min(crate::extract::DEPLOY_LIMIT),
        None if [Method::GET, Method::HEAD, Method::OPTIONS, Method::DELETE].contains(request.method()) => 0,
        None => crate::extract::BODY_LIMIT,
    }
}

/// A request is served only while the bodies being served fit
/// [`LimitSettings::body_bytes_in_all`]; its room is freed when its answer is made.
pub async fn bodies(
    limits: &Arc<Limits>,
    request: axum::extract::Request,
    inner: impl AsyncFnOnce(axum::extract::Request) -> axum::response::Response,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let bytes = body_weight(&request);
    if bytes == 0 {
        return inner(request).await;
    }
    match limits.body(bytes) {
        Ok(_permit) => inner(request).await,
        Err(refused) => refused.into_response(),
    }
}
