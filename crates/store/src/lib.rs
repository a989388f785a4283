//! Where Baton's durable state lives, behind one set of traits.
//!
//! A [`Store`] hands out read transactions to anyone and write transactions to
//! the one commit loop. A [`WriteTxn`] sees its own writes before it commits,
//! so the runtime can apply many commands in one transaction (group commit)
//! and read what the earlier ones wrote. Rows are plain data ([`rows`]); each
//! store maps them to its tables. Every store passes [`conformance::run`].
//!
//! This crate knows no SQL; `store-sqlite` (and later `store-postgres`) do.
//! [`MemoryStore`] keeps everything in ordered maps, for tests and `baton test`.

pub mod compact;
pub mod conformance;
mod error;
mod memory;
pub mod rows;

pub use error::Error;
pub use memory::{instances_decoded, MemoryStore};
pub use rows::*;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A source of transactions. Shared between threads; the runtime's commit loop
/// is the only caller of [`Store::write`].
pub trait Store: Send + Sync {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>>;
    fn write(&self) -> Result<Box<dyn WriteTxn + '_>>;
    /// Writes a consistent copy of the whole store to the new file `to`, while
    /// it keeps serving (a server started on that file has everything committed
    /// before the copy began). `None`: this store is not kept in a file (the
    /// memory store; PostgreSQL, which `pg_dump` backs up).
    fn backup(&self, to: &std::path::Path) -> Option<Result<()>> {
        let _ = to;
        None
    }
    /// Calls `heard` with what other writers of this store committed, for as
    /// long as the store lives (several nodes on one database: a long poll on
    /// this node wakes when another creates a job). `false`: no one else
    /// writes this store, so there is nothing to hear.
    fn listen(&self, heard: Box<dyn Fn(News) + Send + Sync>) -> bool {
        let _ = heard;
        false
    }
    /// What this store has written since it opened ([`Written`]). `None`:
    /// it writes nothing durable (the memory store).
    fn written(&self) -> Option<Result<Written>> {
        None
    }
    /// What each table and index holds now ([`Footprint`]), the largest
    /// first: where the disk goes (`baton bench --report`). `None`: the
    /// store keeps nothing on disk (the memory store).
    fn footprint(&self) -> Option<Result<Vec<Footprint>>> {
        None
    }
    /// Whether [`WriteTxn::commit`] returns before what it committed is on
    /// disk, leaving that to [`Store::sync`]: the commit loop then runs its
    /// next transaction while another thread waits for the disk, and answers
    /// no one about a commit until a sync begun after it has returned.
    /// `false`: a commit is durable when it returns (the memory store keeps
    /// nothing; PostgreSQL's server flushes its log before it answers).
    fn defers_sync(&self) -> bool {
        false
    }
    /// Makes durable every transaction committed before the call (see
    /// [`Store::defers_sync`]). An error means some of them may not be: the
    /// caller must not take it back by syncing again, since a later sync can
    /// succeed without having written what the failed one did not.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

/// One table or index of a store and what it holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Footprint {
    /// The table's or index's name.
    pub name: String,
    /// The table an index belongs to (its own name for a table).
    pub table: String,
    /// Rows of a table, entries of an index.
    pub rows: u64,
    /// Bytes of the pages it takes.
    pub bytes: u64,
}

/// What a store wrote since it opened: the cost of a command in figures that
/// do not depend on the machine (`baton bench` gives them per instance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Statements that write transactions ran, reads among them.
    pub statements: u64,
    /// Times the store sent statements to a server and waited for the answer
    /// (0 for a store in this process).
    pub round_trips: u64,
    /// Rows inserted, updated or deleted: on SQLite with those its triggers
    /// wrote (the instance counts), on PostgreSQL by the statements alone.
    pub rows: u64,
    /// Bytes of write-ahead log written: every byte that must reach the disk
    /// before a commit is acknowledged. On PostgreSQL, the server's position
    /// in its log, which every node of one server shares.
    pub wal_bytes: u64,
    pub commits: u64,
}

impl Written {
    /// What was written between `before` and this reading.
    pub fn since(&self, before: &Written) -> Written {
        Written {
            statements: self.statements.saturating_sub(before.statements),
            round_trips: self.round_trips.saturating_sub(before.round_trips),
            rows: self.rows.saturating_sub(before.rows),
            wal_bytes: self.wal_bytes.saturating_sub(before.wal_bytes),
            commits: self.commits.saturating_sub(before.commits),
        }
    }
}

/// What a committed transaction changed, as other nodes hear of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct News {
    /// Jobs were created or given back unleased (a worker may find one now).
    pub jobs: bool,
    /// An instance ended.
    pub ended: bool,
    /// Workflows, decisions or forms were deployed.
    pub deployed: bool,
    /// API tokens were made or revoked.
    pub tokens: bool,
}

impl News {
    /// Anything may have changed: what a listener assumes after it lost the
    /// database for a while and may have missed news.
    pub const EVERYTHING: News = News { jobs: true, ended: true, deployed: true, tokens: true };

    pub fn is_empty(&self) -> bool {
        *self == News::default()
    }

    /// As text, one letter per kind: what PostgreSQL's `NOTIFY` carries.
    pub fn to_letters(&self) -> String {
        [(self.jobs, 'j'), (self.ended, 'e'), (self.deployed, 'd'), (self.tokens, 't')]
            .iter()
            .filter(|(set, _)| *set)
            .map(|(_, letter)| *letter)
            .collect()
    }

    /// Reads [`News::to_letters`]; an unknown letter means everything (a newer node's news).
    pub fn from_letters(letters: &str) -> News {
        let mut news = News::default();
        for letter in letters.chars() {
            match letter {
                'j' => news.jobs = true,
                'e' => news.ended = true,
                'd' => news.deployed = true,
                't' => news.tokens = true,
                _ => return News::EVERYTHING,
            }
        }
        news
    }

    /// What writing `write` tells other nodes.
    pub fn of(write: &Write) -> News {
        match write {
            Write::PutJob(job) => News { jobs: job.state == engine::JobState::Activatable && job.lease.is_none(), ..News::default() },
            Write::PutInstance(row) => News { ended: row.status.is_ended(), ..News::default() },
            Write::PutWorkflow(_) | Write::PutDecision(_) | Write::PutForm(_) => News { deployed: true, ..News::default() },
            Write::PutToken(_) => News { tokens: true, ..News::default() },
            _ => News::default(),
        }
    }

    pub fn add(&mut self, other: News) {
        self.jobs |= other.jobs;
        self.ended |= other.ended;
        self.deployed |= other.deployed;
        self.tokens |= other.tokens;
    }
}

/// What a write transaction may hold alone until it ends, when several
/// writers share a store ([`WriteTxn::lock`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock<'a> {
    /// Deploying: versions and deployment keys are read, then given.
    Deployments,
    /// Correlating the tenant's messages of this name and key: a publication
    /// and a subscription opened meanwhile must see each other, and a kept
    /// message reaches each process once.
    Correlation { tenant: &'a str, name: &'a str, correlation_key: &'a str },
    /// Starting with this request id (one instance per id).
    Request { tenant: &'a str, request_id: &'a str },
    /// Making the first API token of a new database.
    FirstToken,
}

impl Lock<'_> {
    /// A name for the lock, the same on every node.
    pub fn name(&self) -> String {
        // Lengths first, so no two different locks read alike.
        match self {
            Lock::Deployments => "deployments".to_string(),
            Lock::Correlation { tenant, name, correlation_key } => {
                format!("correlation {}:{tenant} {}:{name} {correlation_key}", tenant.len(), name.len())
            }
            Lock::Request { tenant, request_id } => format!("request {}:{tenant} {request_id}", tenant.len()),
            Lock::FirstToken => "first token".to_string(),
        }
    }
}

/// Lookups. Lists come in pages ordered by a stable key; `after` is the cursor
/// a previous page returned.
pub trait ReadTxn {
    fn workflows(&mut self) -> Result<Vec<WorkflowRow>>;
    fn workflow(
        &mut self,
        tenant: &str,
        process_id: &str,
        version: u32,
    ) -> Result<Option<WorkflowRow>>;
    fn instance(&mut self, id: &str) -> Result<Option<InstanceRow>>;
    /// The id of the instance with this [`InstanceRow::number`].
    fn instance_id_by_number(&mut self, number: u64) -> Result<Option<String>>;
    /// An instance's [`InstanceRow::number`] and workflow version, without reading its state.
    fn instance_number(&mut self, id: &str) -> Result<Option<(u64, u32)>>;
    /// The highest instance number given so far (0 in an empty store).
    fn last_instance_number(&mut self) -> Result<u64>;
    /// An instance's `update_count`, without reading its state (`None`: no such instance).
    fn instance_version(&mut self, id: &str) -> Result<Option<u64>>;
    /// The highest sequence number of a kept message (0 when none is kept).
    fn last_message_seq(&mut self) -> Result<u64>;
    /// The highest deployment key of a workflow, decision or form (0 when none is deployed).
    fn last_deployment(&mut self) -> Result<u64> {
        let workflows = self.workflows()?.iter().map(|w| w.deployment).max().unwrap_or(0);
        let decisions = self.decisions(&None, None)?.iter().map(|d| d.deployment).max().unwrap_or(0);
        let forms = self.forms(&None, None)?.iter().map(|f| f.deployment).max().unwrap_or(0);
        Ok(workflows.max(decisions).max(forms))
    }
    fn instances(
        &mut self,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<Page<InstanceRow>>;
    fn instance_by_request(&mut self, tenant: &str, request_id: &str) -> Result<Option<String>>;
    /// Whether an instance of the tenant's `process_id` started by a message with this correlation key is still active.
    fn message_started_active(
        &mut self,
        tenant: &str,
        process_id: &str,
        correlation_key: &str,
    ) -> Result<bool>;
    fn history(
        &mut self,
        instance_id: &str,
        filter: &HistoryFilter,
        page: &PageRequest,
    ) -> Result<Page<HistoryRow>>;
    fn job(&mut self, key: &str) -> Result<Option<JobRow>>;
    fn jobs(&mut self, filter: &JobFilter, page: &PageRequest) -> Result<Page<JobRow>>;
    /// Jobs of `job_type` (in `tenants`) a worker may take at `now`: activatable, past their
    /// backoff, not leased (or the lease ran out), their instance running; oldest first.
    fn activatable_jobs(
        &mut self,
        job_type: &str,
        tenants: &Tenants,
        now: i64,
        limit: usize,
    ) -> Result<Vec<JobRow>>;
    fn task(&mut self, key: &str) -> Result<Option<TaskRow>>;
    fn tasks(&mut self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<TaskRow>>;
    /// Deployed forms of `tenants`, every version (or those of one form id), by tenant, form id and version.
    fn forms(&mut self, tenants: &Tenants, form_id: Option<&str>) -> Result<Vec<FormRow>>;
    /// Deployed decisions of `tenants`, every version (or those of one decision id), by tenant, decision id and version.
    fn decisions(&mut self, tenants: &Tenants, decision_id: Option<&str>) -> Result<Vec<DecisionRow>>;
    fn incident(&mut self, key: &str) -> Result<Option<IncidentRow>>;
    fn incidents(
        &mut self,
        filter: &IncidentFilter,
        page: &PageRequest,
    ) -> Result<Page<IncidentRow>>;
    /// How many open incidents the instances that `instance_id` called have,
    /// directly or further down (not counting its own).
    fn descendant_incidents(&mut self, instance_id: &str) -> Result<u32>;
    /// Pending timers of instances (not start timers), in due order.
    fn timers(&mut self, filter: &TimerFilter, page: &PageRequest) -> Result<Page<TimerRow>>;
    fn timer(&mut self, instance_id: &str, local_key: u64) -> Result<Option<TimerRow>>;
    /// Open message and signal subscriptions, oldest first.
    fn subscriptions(
        &mut self,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<SubscriptionRow>>;
    /// Published messages kept with a time to live, in publication order.
    fn messages(
        &mut self,
        filter: &MessageFilter,
        now: i64,
        page: &PageRequest,
    ) -> Result<Page<MessageRow>>;
    /// The tenant's open message subscriptions with this name and key, oldest first.
    fn message_subscriptions(
        &mut self,
        tenant: &str,
        name: &str,
        correlation_key: &str,
    ) -> Result<Vec<SubscriptionRow>>;
    /// The tenant's open signal subscriptions with this name, oldest first.
    fn signal_subscriptions(&mut self, tenant: &str, name: &str) -> Result<Vec<SubscriptionRow>>;
    /// The tenant's buffered messages with this name and key that have not expired at `now`, oldest first.
    fn buffered_messages(
        &mut self,
        tenant: &str,
        name: &str,
        correlation_key: &str,
        now: i64,
    ) -> Result<Vec<MessageRow>>;
    fn message_by_id(
        &mut self,
        tenant: &str,
        message_id: &str,
        now: i64,
    ) -> Result<Option<MessageRow>>;
    /// Timers of running instances due at or before `now`, in due order.
    /// (A suspended instance's timers wait for `resume`, which fires them.)
    fn due_timers(&mut self, now: i64, limit: usize) -> Result<Vec<TimerRow>>;
    /// Instances whose scheduled deletion ([`Write::ScheduleDeletion`]) is
    /// due at `now`, earliest first, at most `limit`.
    fn due_deletions(&mut self, now: i64, limit: usize) -> Result<Vec<String>>;
    /// Buffered messages that expired at or before `before`, in the order
    /// they expired, at most `limit`: their `seq`s, for retention to delete.
    fn expired_messages(&mut self, before: i64, limit: usize) -> Result<Vec<u64>>;
    /// When the instance is to be deleted (`None`: it is not scheduled).
    fn scheduled_deletion(&mut self, instance_id: &str) -> Result<Option<i64>>;
    /// The earliest due time of a timer of a running instance, or of a start timer.
    fn next_due(&mut self) -> Result<Option<i64>>;
    fn start_timers(&mut self) -> Result<Vec<StartTimerRow>>;
    /// Every API token, revoked ones too, by name.
    fn tokens(&mut self) -> Result<Vec<TokenRow>>;
    /// Instances per status, for metrics.
    fn count_instances(&mut self) -> Result<Vec<(engine::Status, u64)>> {
        let mut counts: Vec<(engine::Status, u64)> = Vec::new();
        for row in self.instance_counts(&None)? {
            match counts.iter_mut().find(|(status, _)| *status == row.status) {
                Some((_, count)) => *count += row.count,
                None => counts.push((row.status, row.count)),
            }
        }
        counts.sort_by_key(|(status, _)| status.as_str());
        Ok(counts)
    }
    /// The instance counts of `tenants` by workflow version, status and
    /// incidents, without the empty ones, ordered by workflow version. Kept as instances are
    /// written: the cost is the number of workflow versions, not of instances.
    fn instance_counts(&mut self, tenants: &Tenants) -> Result<Vec<InstanceCount>>;
}

/// A transaction that writes. Dropped without [`WriteTxn::commit`], it rolls back.
pub trait WriteTxn: ReadTxn {
    fn apply(&mut self, write: Write) -> Result<()>;
    /// Inserts or replaces an instance, as [`Write::PutInstance`] does, from
    /// a borrowed row: the runtime keeps the state it writes in its cache.
    fn put_instance(&mut self, row: &InstanceRow) -> Result<()>;
    /// Writes an instance that the writer read when the store held its
    /// `update_count` `stored` (`None`: a new instance), and refuses with
    /// [`Error::conflict`] when the store holds another version: someone else
    /// wrote it meanwhile (another node, on a shared database). A store that
    /// sends writes later (PostgreSQL's pipelining) may refuse only at a later
    /// call or at commit; the transaction then cannot commit. What the runtime
    /// writes goes through here, so no change is lost to a stale copy.
    fn put_instance_if(&mut self, row: &InstanceRow, stored: Option<u64>) -> Result<()>;
    /// Holds `lock` until the transaction ends, waiting while another writer
    /// holds it. A store with one writer has nothing to wait for.
    fn lock(&mut self, lock: &Lock<'_>) -> Result<()> {
        let _ = lock;
        Ok(())
    }
    /// The number for an instance started now ([`InstanceRow::number`]),
    /// given `last`, the one this transaction gave before (if it did): unique
    /// in the store whoever else starts instances meanwhile, as long as every
    /// number comes from here (increasing on one writer; with several, in
    /// blocks, so not in start order across them).
    fn next_instance_number(&mut self, last: Option<u64>) -> Result<u64> {
        Ok(match last {
            Some(number) => number + 1,
            None => self.last_instance_number()? + 1,
        })
    }
    /// [`ReadTxn::activatable_jobs`], each held by this transaction alone: a
    /// job another writer is handing out meanwhile is left out, not waited for.
    fn claim_jobs(&mut self, job_type: &str, tenants: &Tenants, now: i64, limit: usize) -> Result<Vec<JobRow>> {
        self.activatable_jobs(job_type, tenants, now, limit)
    }
    /// [`ReadTxn::due_timers`] and the start timers due at `now`, each held by
    /// this transaction alone (one another writer fires meanwhile is left out).
    fn claim_due_timers(&mut self, now: i64, limit: usize) -> Result<(Vec<StartTimerRow>, Vec<TimerRow>)> {
        let starts: Vec<StartTimerRow> = self.start_timers()?.into_iter().filter(|t| t.due_at <= now).take(limit).collect();
        let timers = self.due_timers(now, limit - starts.len())?;
        Ok((starts, timers))
    }
    /// How many rows this transaction has inserted, updated or deleted so far,
    /// if the store can tell: a command that failed while the count stood
    /// still wrote nothing, and needs no savepoint to be undone. `None`: the
    /// store cannot tell, and every command runs in a savepoint.
    fn changes(&self) -> Option<u64> {
        None
    }
    /// Marks a point to roll back to, so one command of a batch can be undone
    /// alone. One savepoint at a time.
    fn savepoint(&mut self) -> Result<()>;
    /// Undoes every write since the savepoint, and ends it.
    fn rollback_to_savepoint(&mut self) -> Result<()>;
    /// Keeps the writes since the savepoint, and ends it.
    fn release_savepoint(&mut self) -> Result<()>;
    fn commit(self: Box<Self>) -> Result<()>;
}
