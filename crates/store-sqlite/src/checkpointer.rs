//! Checkpoints beside the writer, on a thread of their own (`baton-checkpoint`).
//!
//! A checkpoint copies the pages the log holds into the file and syncs both;
//! SQLite's automatic one runs inside the commit that takes the log past its
//! limit ([`CHECKPOINT_PAGES`]), on the commit thread: 7 % of that thread's
//! samples on W1. Here the writer's commit only asks: a thread with a
//! connection of its own copies the log as it was when it began (a passive
//! checkpoint, which SQLite lets run beside a writer), while the writer goes
//! on appending. The log starts over only once every frame in it has been
//! copied when the writer begins a transaction, and under a steady load the
//! writer has appended more by the time the thread is done; so the writer's
//! next commit past the limit copies what is left itself (what was appended
//! meanwhile, a small part), and its next transaction starts the log over.
//! Where the thread failed (its error is kept for the next attempt), the
//! writer copies the whole log itself, as SQLite's automatic checkpoint did.

use std::ffi::c_int;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rusqlite::Connection;
use store::{Error, Result};

use crate::sql_error;

/// Pages the log may grow by before it is copied into the file (SQLite's
/// automatic checkpoint's default is 1 000).
///
/// A checkpoint copies each page once however many frames the log holds of
/// it, and syncs the log and the file once: the hot pages of a busy server
/// (the right ends of the time-ordered indexes, the count rows, the leaves a
/// low-cardinality variable's entries go to) are copied once per 10 000
/// pages of log, not ten times, and the two `fsync`s are paid a tenth as
/// often. W1, 60 000 instances, alternately: 98.7 µs of commit thread per job
/// with 1 000 pages, 90.0 with 10 000 (medians of five, docs/benchmarks.md).
/// The log then takes up to about 40 MiB of disk, and a restart after a
/// crash reads at most that much of it again.
pub(crate) const CHECKPOINT_PAGES: c_int = 10_000;

/// The writer's side and the thread's, under one lock.
#[derive(Default)]
struct State {
    /// The thread was asked for a checkpoint and has not finished it.
    busy: bool,
    /// The thread finished one since the log last started over: what is
    /// left is the writer's to copy.
    copied: bool,
    /// The thread is to end.
    stop: bool,
    /// Checkpoints the thread finished, and the last one's frames (in the log, copied).
    passes: u64,
    last: Option<(c_int, c_int)>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it half-changed (every
        // change is a field's assignment), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The thread, and the writer's hook that asks it for checkpoints.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on a connection of its own (`connection`, to the
    /// writer's file) and sets the writer's hook, which replaces SQLite's
    /// automatic checkpoint.
    pub(crate) fn start(writer: &mut Connection, connection: Connection) -> Result<Checkpointer> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("baton-checkpoint".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&shared, &connection)
            })
            .map_err(|e| Error::unavailable(format!("cannot start the checkpoint thread: {e}")))?;
        let hook = Arc::clone(&shared);
        writer
            .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: c_int| {
                let mut state = hook.state();
                if pages < CHECKPOINT_PAGES {
                    // The log started over since the thread's checkpoint.
                    state.copied = false;
                    return Ok(());
                }
                if state.busy {
                    return Ok(());
                }
                if state.copied {
                    state.copied = false;
                    drop(state);
                    // What was appended while the thread copied, and nothing
                    // appends now: the log is then copied whole, and the
                    // writer's next transaction starts it over. A checkpoint
                    // that cannot finish (a reader on an old snapshot) is
                    // tried again past the limit, as SQLite's own. Its error
                    // is not the commit's, which is done: an error returned
                    // here would fail the COMMIT statement all the same.
                    let _ = wal.checkpoint();
                    return Ok(());
                }
                state.busy = true;
                hook.changed.notify_all();
                Ok(())
            }))
            .map_err(sql_error)?;
        Ok(Checkpointer { shared, thread: Some(thread) })
    }

    /// Waits until the thread has finished `passes` checkpoints, and returns
    /// the last one's frames (in the log, copied).
    #[cfg(test)]
    pub(crate) fn wait_for(&self, passes: u64) -> (c_int, c_int) {
        let mut state = self.shared.state();
        while state.passes < passes {
            let (next, timeout) = self.shared.changed.wait_timeout(state, std::time::Duration::from_secs(30)).unwrap();
            assert!(!timeout.timed_out(), "the checkpoint thread did not finish checkpoint {passes} in 30 s");
            state = next;
        }
        state.last.expect("a checkpoint finished")
    }
}

fn run(shared: &Shared, connection: &Connection) {
    loop {
        let mut state = shared.state();
        while !state.busy && !state.stop {
            state = shared.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if state.stop {
            return;
        }
        drop(state);
        // Passive: it never waits for the writer or readers, and copies the
        // frames no reader still needs from the log.
        let done = connection.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE);
        let mut state = shared.state();
        state.busy = false;
        // Failed, it leaves the whole log to the writer (the hook's next call past the limit).
        state.copied = true;
        state.passes += 1;
        state.last = done.ok();
        shared.changed.notify_all();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
