//! Job streams: jobs pushed to a worker as they are created, for as long as
//! it listens, within a window it chose.
//!
//! A stream hands out at most `window` jobs that its worker has not reported
//! yet. Each job handed out holds one place of the window until the job
//! leaves the worker's hands: its completion, failure or error is committed
//! on this node (whoever sent it), it is found gone, or its lease runs out.
//! So a busy worker is not sent jobs it would only hold while their leases
//! run, and a worker that reports many jobs in one request gets as many new
//! ones at once. A report that reaches another node of a shared database
//! frees its place only when the lease ends.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::core::ActivatedJob;
use crate::service::{Command, Handle};
use crate::Error;

/// How long one round waits for jobs before looking at the stream again.
const ROUND: Duration = Duration::from_secs(10);
/// How often a stream with no free place looks for leases that ran out.
const SWEEP: Duration = Duration::from_secs(1);

/// What a worker asks a stream for.
#[derive(Clone, Debug)]
pub struct JobStream {
    pub job_type: String,
    pub worker: String,
    /// At most this many jobs handed out and not yet reported.
    pub window: usize,
    pub lease_ms: i64,
    pub tenants: store::Tenants,
    /// End the stream after this many jobs; `None`: never.
    pub limit: Option<u64>,
}

/// The jobs handed out on this node's streams and not yet reported, each
/// holding a place of its stream's window.
#[derive(Default)]
pub(crate) struct StreamedJobs {
    held: Mutex<HashMap<String, Held>>,
    /// How many are held: a server with no stream open pays no lock per job command.
    count: AtomicUsize,
    next_stream: AtomicU64,
}

struct Held {
    stream: u64,
    _place: OwnedSemaphorePermit,
}

impl StreamedJobs {
    fn hold(&self, key: &str, stream: u64, place: OwnedSemaphorePermit) {
        let mut held = self.lock();
        // A job handed out again (its first lease ran out) is the new stream's.
        held.insert(key.to_string(), Held { stream, _place: place });
        self.count.store(held.len(), Ordering::Relaxed);
    }

    /// Frees the job's place, if this stream still holds it.
    fn drop_if_held_by(&self, key: &str, stream: u64) {
        let mut held = self.lock();
        if held.get(key).is_some_and(|h| h.stream == stream) {
            held.remove(key);
            self.count.store(held.len(), Ordering::Relaxed);
        }
    }

    /// Whether any stream holds a job now (a job is held before its report can come).
    pub(crate) fn holds_any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called with each job command's outcome: a job reported, found gone,
    /// or whose lease had run out has left its worker's hands.
    pub(crate) fn settled(&self, command_key: Option<&str>, outcome: &Result<crate::Reply, Error>) {
        let Some(key) = command_key else { return };
        let left_hands = match outcome {
            Ok(_) => true,
            Err(Error::NotFound { what: "job", .. } | Error::LeaseExpired { .. }) => true,
            Err(_) => false,
        };
        if left_hands {
            let mut held = self.lock();
            if held.remove(key).is_some() {
                self.count.store(held.len(), Ordering::Relaxed);
            }
        }
    }
}

/// The job a command reports on, when it is a worker's report.
pub(crate) fn reported_job(command: &Command) -> Option<&str> {
    match command {
        Command::CompleteJob { key, .. } | Command::FailJob { key, .. } | Command::ThrowError { key, .. } => Some(key),
        _ => None,
    }
}

impl Handle {
    /// Opens a job stream: jobs arrive on the receiver as they are created,
    /// within the stream's window, until the receiver is dropped, the limit
    /// is reached or the server stops. An error ends the stream.
    pub fn stream_jobs(&self, asked: JobStream) -> mpsc::Receiver<Result<ActivatedJob, Error>> {
        let window = asked.window.max(1);
        let (sender, receiver) = mpsc::channel(window);
        let handle = self.clone();
        let streamed = self.streamed.clone();
        let stream = streamed.next_stream.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let places = Arc::new(Semaphore::new(window));
            // Jobs handed out, by when their lease ends (one lease length for the stream: in order).
            let mut leases: VecDeque<(i64, String)> = VecDeque::new();
            let mut left = asked.limit;
            'rounds: while left != Some(0) && !handle.is_stopping() {
                let now = handle.clock.now();
                while leases.front().is_some_and(|(ends, _)| *ends <= now) {
                    if let Some((_, key)) = leases.pop_front() {
                        streamed.drop_if_held_by(&key, stream);
                    }
                }
                let first = tokio::select! {
                    place = places.clone().acquire_owned() => match place {
                        Ok(place) => place,
                        Err(_) => break,
                    },
                    // Look again for leases that ran out, and for a server stopping.
                    () = tokio::time::sleep(SWEEP) => continue,
                    () = sender.closed() => break,
                };
                let mut free = vec![first];
                while let Ok(place) = places.clone().try_acquire_owned() {
                    free.push(place);
                }
                if let Some(left) = left {
                    free.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                }
                let asking = handle.activate(asked.job_type.clone(), asked.worker.clone(), free.len(), asked.lease_ms, ROUND, asked.tenants.clone());
                let jobs = tokio::select! {
                    jobs = asking => jobs,
                    () = sender.closed() => break,
                };
                let jobs = match jobs {
                    Ok(jobs) => jobs,
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        break;
                    }
                };
                for job in jobs {
                    let Some(place) = free.pop() else { break };
                    let ends = job.job.lease_until.unwrap_or_else(|| handle.clock.now().saturating_add(asked.lease_ms));
                    streamed.hold(&job.job.key, stream, place);
                    leases.push_back((ends, job.job.key.clone()));
                    left = left.map(|l| l.saturating_sub(1));
                    // A worker gone after activation leaves its jobs to their leases.
                    if sender.send(Ok(job)).await.is_err() {
                        break 'rounds;
                    }
                }
            }
            // The stream's places go with it; its jobs stay leased to the worker, which may still report them.
            for (_, key) in leases {
                streamed.drop_if_held_by(&key, stream);
            }
        });
        receiver
    }
}
