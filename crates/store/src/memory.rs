//! The in-memory store: maps behind one lock. For tests, `baton test` and
//! benchmarks labelled `memory`; nothing survives the process.
//!
//! Instance states and history are kept encoded ([`crate::compact`]), like
//! the blob column of a database, so an open instance costs about a kilobyte
//! and a write moves one buffer instead of a tree of small allocations. Rows
//! found by key live in hash maps (ids share long prefixes, which makes
//! ordered string keys slow to compare); orders that queries need are kept in
//! ordered indexes beside them.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use engine::{HistoryEntry, InstanceState, Status};

use crate::compact;
use crate::rows::*;
use crate::{Error, ReadTxn, Result, Store, WriteTxn};

/// Hash maps with foldhash: several times faster than SipHash on ids, still
/// seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Data {
    workflows: BTreeMap<(String, String, u32), WorkflowRow>,
    forms: BTreeMap<(String, String, u32), FormRow>,
    decisions: BTreeMap<(String, String, u32), DecisionRow>,
    /// Instances by (tenant, process id, version, status, with incidents).
    counts: BTreeMap<CountKey, u64>,
    instances: HashMap<Box<str>, Box<StoredInstance>>,
    /// Instance ids by their numbers.
    instances_by_number: BTreeMap<u64, Box<str>>,
    /// Instances in list order: (started_at, id).
    instances_by_start: BTreeMap<(i64, Box<str>), ()>,
    /// Instances started by a message with a correlation key: (tenant,
    /// process id, start key, id), as the SQL stores' `instances_by_start_key`.
    instances_by_start_key: BTreeMap<StartKeyEntry, ()>,
    requests: HashMap<(String, String), String>,
    /// Each instance's request ids: (instance id, tenant, request id).
    requests_by_instance: BTreeMap<(Box<str>, String, String), ()>,
    /// Jobs by key: an instance's are a range ([`item_keys_of`]), as tasks'
    /// and incidents' are.
    jobs: BTreeMap<Box<str>, Box<JobRow>>,
    /// Jobs, tasks and incidents in list order ([`Listed`]).
    jobs_listed: BTreeMap<Listed, ()>,
    /// Activatable jobs by type and when they are free ([`free_entry`]),
    /// but those of held instances.
    jobs_free: BTreeMap<FreeEntry, ()>,
    timers: BTreeMap<(String, u64), TimerRow>,
    /// Timers in list order ([`Listed`]).
    timers_listed: BTreeMap<Listed, ()>,
    /// Timers by when they are due, but those of held instances.
    timers_due: BTreeMap<DueEntry, ()>,
    /// Suspended instances, whose timers and jobs are held (`Write::HoldWaits`).
    held: HashMap<Box<str>, ()>,
    subscriptions: BTreeMap<(String, u64), SubscriptionRow>,
    subscriptions_listed: BTreeMap<Listed, ()>,
    /// Subscriptions by what they wait for ([`Awaited`]).
    subscriptions_awaited: BTreeMap<Awaited, ()>,
    tasks: BTreeMap<String, TaskRow>,
    tasks_listed: BTreeMap<Listed, ()>,
    /// Tasks by candidate group, in list order: (group, [`group_list`],
    /// created_at, key); each task twice, in its state's list and in the list of both.
    tasks_of_group: BTreeMap<(Box<str>, u8, i64, Box<str>), ()>,
    incidents: BTreeMap<String, IncidentRow>,
    incidents_listed: BTreeMap<Listed, ()>,
    history: HashMap<Box<str>, History>,
    messages: BTreeMap<u64, MessageRow>,
    messages_listed: BTreeMap<Listed, ()>,
    /// Buffered messages by (tenant, name, correlation key, seq), and by
    /// (tenant, message id, seq) for those that have an id.
    messages_by_name: BTreeMap<MessageName, ()>,
    messages_by_id: BTreeMap<(Box<str>, Box<str>, u64), ()>,
    /// Buffered messages in the order they expire: (expires_at, seq).
    messages_by_expiry: BTreeMap<(i64, u64), ()>,
    start_timers: BTreeMap<(String, String, String), StartTimerRow>,
    tokens: BTreeMap<String, TokenRow>,
    /// Scheduled deletions in due order, and each instance's.
    deletions: BTreeMap<(i64, Box<str>), ()>,
    deletion_at: HashMap<Box<str>, i64>,
}

type CountKey = (String, String, u32, Status, bool);

/// An entry of `instances_by_start_key`.
type StartKeyEntry = (Box<str>, Box<str>, Box<str>, Box<str>);

/// An instance's entry in `instances_by_start_key`, if it has a start key.
fn start_key_entry(tenant: &str, process_id: &str, start_key: Option<&str>, id: &str) -> Option<StartKeyEntry> {
    start_key.map(|key| (tenant.into(), process_id.into(), key.into(), id.into()))
}

/// An entry of `instances_by_start`.
type StartEntry<'a> = (&'a (i64, Box<str>), &'a ());

fn count_key(tenant: &str, process_id: &str, version: u32, status: Status, incidents: u32) -> CountKey {
    (tenant.to_string(), process_id.to_string(), version, status, incidents > 0)
}

/// Moves one instance between counts (`from: None` for a new one, `to: None` for one deleted), undoably.
fn recount(data: &mut Data, undo: &mut Vec<Undo>, from: Option<CountKey>, to: Option<CountKey>) {
    if from == to {
        return;
    }
    let mut change = |key: CountKey, by: i64| {
        let now = data.counts.get(&key).copied().unwrap_or(0).saturating_add_signed(by);
        set(data, undo, |d| &mut d.counts, key, (now > 0).then_some(now));
    };
    if let Some(from) = from {
        change(from, -1);
    }
    if let Some(to) = to {
        change(to, 1);
    }
}

/// Removes the instance's scheduled deletion, if it has one, undoably.
fn unschedule(data: &mut Data, undo: &mut Vec<Undo>, id: &str) {
    if let Some(&at) = data.deletion_at.get(id) {
        set(data, undo, |d| &mut d.deletions, (at, id.into()), None);
        set(data, undo, |d| &mut d.deletion_at, Box::<str>::from(id), None);
    }
}

/// Removes an instance and every row of it, undoably.
fn delete_instance(data: &mut Data, undo: &mut Vec<Undo>, id: &str) {
    let key: Box<str> = id.into();
    if let Some(old) = data.instances.get(&key) {
        let (count, started_at, number) = (count_key(&old.tenant, &old.process_id, old.version, old.status, old.incidents), old.started_at, old.number);
        let started_by_key = start_key_entry(&old.tenant, &old.process_id, old.start_key.as_deref(), id);
        recount(data, undo, Some(count), None);
        set(data, undo, |d| &mut d.instances_by_start, (started_at, key.clone()), None);
        if let Some(entry) = started_by_key {
            set(data, undo, |d| &mut d.instances_by_start_key, entry, None);
        }
        if data.instances_by_number.get(&number).is_some_and(|owner| *owner == key) {
            set(data, undo, |d| &mut d.instances_by_number, number, None);
        }
        set(data, undo, |d| &mut d.instances, key.clone(), None);
    }
    let requests: Vec<(Box<str>, String, String)> = data
        .requests_by_instance
        .range((key.clone(), String::new(), String::new())..)
        .take_while(|((instance, _, _), ())| *instance == key)
        .map(|(k, ())| k.clone())
        .collect();
    for request in requests {
        set(data, undo, |d| &mut d.requests, (request.1.clone(), request.2.clone()), None);
        set(data, undo, |d| &mut d.requests_by_instance, request, None);
    }
    let keys = item_keys_of(id);
    let jobs: Vec<(Box<str>, Option<FreeEntry>)> = key_range(&data.jobs, &keys).map(|(k, j)| (k.clone(), listed_free(data, j))).collect();
    for (job, free) in jobs {
        move_entry(data, undo, |d| &mut d.jobs_free, free, None);
        set_job(data, undo, job, None);
    }
    let own = (id.to_string(), 0)..=(id.to_string(), u64::MAX);
    let timers: Vec<(String, u64)> = data.timers.range(own.clone()).map(|(k, _)| k.clone()).collect();
    for timer in timers {
        set_timer(data, undo, timer, None);
    }
    if data.held.contains_key(id) {
        set(data, undo, |d| &mut d.held, key.clone(), None);
    }
    let subscriptions: Vec<(String, u64)> = data.subscriptions.range(own).map(|(k, _)| k.clone()).collect();
    for subscription in subscriptions {
        set_subscription(data, undo, subscription, None);
    }
    let tasks: Vec<String> = key_range(&data.tasks, &keys).map(|(k, _)| k.clone()).collect();
    for task in tasks {
        set_task(data, undo, task, None);
    }
    let incidents: Vec<String> = key_range(&data.incidents, &keys).map(|(k, _)| k.clone()).collect();
    for incident in incidents {
        set_incident(data, undo, incident, None);
    }
    set(data, undo, |d| &mut d.history, key, None);
    unschedule(data, undo, id);
}

/// An instance row with its state encoded.
#[derive(Clone)]
struct StoredInstance {
    number: u64,
    process_id: String,
    tenant: String,
    version: u32,
    status: Status,
    business_key: Option<String>,
    parent_id: Option<String>,
    started_at: i64,
    ended_at: Option<i64>,
    incidents: u32,
    waiting: Vec<String>,
    start_key: Option<String>,
    update_count: u64,
    history_count: u64,
    state: Box<[u8]>,
}

impl StoredInstance {
    fn encode(row: &InstanceRow) -> Result<StoredInstance> {
        Ok(StoredInstance {
            state: compact::encode(&row.state)?.into_boxed_slice(),
            number: row.number,
            process_id: row.process_id.clone(),
            tenant: row.tenant.clone(),
            version: row.version,
            status: row.status,
            business_key: row.business_key.clone(),
            parent_id: row.parent_id.clone(),
            started_at: row.started_at,
            ended_at: row.ended_at,
            incidents: row.incidents,
            waiting: row.waiting.clone(),
            start_key: row.start_key.clone(),
            update_count: row.update_count,
            history_count: row.history_count,
        })
    }

    fn summary<'a>(&'a self, id: &'a str) -> InstanceSummary<'a> {
        InstanceSummary {
            id,
            tenant: &self.tenant,
            status: self.status,
            process_id: &self.process_id,
            version: self.version,
            business_key: self.business_key.as_deref(),
            parent_id: self.parent_id.as_deref(),
            waiting: &self.waiting,
            started_at: self.started_at,
            ended_at: self.ended_at,
        }
    }

    fn decode(&self, id: &str) -> Result<InstanceRow> {
        DECODED.with(|decoded| decoded.set(decoded.get() + 1));
        let state: InstanceState = compact::decode(&self.state)
            .map_err(|e| Error::corrupt(format!("instance {id}: {}", e.message())))?;
        Ok(InstanceRow {
            id: id.to_string(),
            number: self.number,
            process_id: self.process_id.clone(),
            tenant: self.tenant.clone(),
            version: self.version,
            status: self.status,
            business_key: self.business_key.clone(),
            parent_id: self.parent_id.clone(),
            started_at: self.started_at,
            ended_at: self.ended_at,
            incidents: self.incidents,
            waiting: self.waiting.clone(),
            start_key: self.start_key.clone(),
            update_count: self.update_count,
            history_count: self.history_count,
            state,
        })
    }
}

/// One instance's history: entries encoded back to back, in `seq` order.
#[derive(Clone, Default)]
struct History {
    seqs: Vec<u64>,
    /// Where each entry's encoding ends in `bytes`.
    ends: Vec<u32>,
    bytes: Vec<u8>,
}

impl History {
    fn entry(&self, index: usize) -> Result<HistoryEntry> {
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] as usize
        };
        compact::decode(&self.bytes[start..self.ends[index] as usize])
    }

    fn push(&mut self, seq: u64, entry: &HistoryEntry) -> Result<()> {
        compact::encode_into(&mut self.bytes, entry)?;
        let end = u32::try_from(self.bytes.len())
            .map_err(|_| Error::other("an instance's history is larger than 4 GiB"))?;
        self.seqs.push(seq);
        self.ends.push(end);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        let end = if len == 0 {
            0
        } else {
            self.ends[len - 1] as usize
        };
        self.seqs.truncate(len);
        self.ends.truncate(len);
        self.bytes.truncate(end);
    }

    /// Puts a row in its place by `seq`, replacing one with the same `seq`
    /// (as the SQL store's upsert does). Rows normally arrive in order; this
    /// is the rare path, and rebuilds the buffer.
    fn place(&mut self, row: HistoryRow) -> Result<()> {
        let mut rows: Vec<(u64, HistoryEntry)> = Vec::with_capacity(self.seqs.len() + 1);
        for index in 0..self.seqs.len() {
            rows.push((self.seqs[index], self.entry(index)?));
        }
        match rows.binary_search_by_key(&row.seq, |(seq, _)| *seq) {
            Ok(position) => rows[position].1 = row.entry,
            Err(position) => rows.insert(position, (row.seq, row.entry)),
        }
        let mut rebuilt = History::default();
        for (seq, entry) in &rows {
            rebuilt.push(*seq, entry)?;
        }
        *self = rebuilt;
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
    /// For tests of what the runtime does when its database goes away.
    outage: Outage,
}

/// A simulated outage: armed, the next commit fails, and from then on every
/// transaction fails to begin until it is over.
#[derive(Default)]
struct Outage {
    armed: std::sync::atomic::AtomicBool,
    down: std::sync::atomic::AtomicBool,
    /// Every commit fails while reads go on, as on a full disk.
    full: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Makes the next commit fail as a lost database would, and the store
    /// unavailable from then on, until [`MemoryStore::end_outage`].
    #[doc(hidden)]
    pub fn fail_at_next_commit(&self) {
        self.outage.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every commit fail while reads still work (a full disk), until `false`.
    #[doc(hidden)]
    pub fn refuse_commits(&self, refuse: bool) {
        self.outage.full.store(refuse, std::sync::atomic::Ordering::SeqCst);
    }

    #[doc(hidden)]
    pub fn end_outage(&self) {
        self.outage.armed.store(false, std::sync::atomic::Ordering::SeqCst);
        self.outage.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn check_up(&self) -> Result<()> {
        if self.outage.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::unavailable("the memory store is in a simulated outage"));
        }
        Ok(())
    }

    fn lock(&self) -> Result<MutexGuard<'_, Data>> {
        self.data
            .lock()
            .map_err(|_| Error::unavailable("the memory store's lock is poisoned"))
    }
}

impl Store for MemoryStore {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.check_up()?;
        Ok(Box::new(MemoryTxn {
            data: self.lock()?,
            undo: None,
            savepoint: None,
            outage: &self.outage,
        }))
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        self.check_up()?;
        Ok(Box::new(MemoryTxn {
            data: self.lock()?,
            undo: Some(Vec::new()),
            savepoint: None,
            outage: &self.outage,
        }))
    }
}

thread_local! {
    /// Instances this thread's reads of the memory store decoded: what a
    /// list walked, for tests that it walks no more than its page.
    static DECODED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many stored instances this thread's reads decoded so far.
pub fn instances_decoded() -> u64 {
    DECODED.with(std::cell::Cell::get)
}

/// Puts back what a write changed, run in reverse order on rollback.
type Undo = Box<dyn FnOnce(&mut Data) + Send>;

struct MemoryTxn<'a> {
    data: MutexGuard<'a, Data>,
    /// `Some` for a write transaction.
    undo: Option<Vec<Undo>>,
    /// The length of the undo log at the savepoint.
    savepoint: Option<usize>,
    outage: &'a Outage,
}

impl Drop for MemoryTxn<'_> {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take() {
            for step in undo.into_iter().rev() {
                step(&mut self.data);
            }
        }
    }
}

/// The two kinds of map the store keeps rows in.
trait Map<K, V> {
    fn put(&mut self, key: K, value: V) -> Option<V>;
    fn take(&mut self, key: &K) -> Option<V>;
}

impl<K: Ord, V> Map<K, V> for BTreeMap<K, V> {
    fn put(&mut self, key: K, value: V) -> Option<V> {
        self.insert(key, value)
    }

    fn take(&mut self, key: &K) -> Option<V> {
        self.remove(key)
    }
}

impl<K: Hash + Eq, V> Map<K, V> for HashMap<K, V> {
    fn put(&mut self, key: K, value: V) -> Option<V> {
        self.insert(key, value)
    }

    fn take(&mut self, key: &K) -> Option<V> {
        self.remove(key)
    }
}

/// Sets (or with `None` removes) a row and records how to undo it.
fn set<K, V, M>(
    data: &mut Data,
    undo: &mut Vec<Undo>,
    table: fn(&mut Data) -> &mut M,
    key: K,
    value: Option<V>,
) where
    K: Clone + Send + 'static,
    V: Send + 'static,
    M: Map<K, V> + 'static,
{
    let previous = match value {
        Some(value) => table(data).put(key.clone(), value),
        None => table(data).take(&key),
    };
    undo.push(Box::new(move |data| {
        match previous {
            Some(previous) => table(data).put(key, previous),
            None => table(data).take(&key),
        };
    }));
}

/// An activatable job's place among its type's: (type, tenant, when it is
/// free, created_at, key). Free is 0 for a job never leased nor backed off,
/// else when its lease or backoff ends, as the SQL stores' `free_at`.
type FreeEntry = (Box<str>, Box<str>, i64, i64, Box<str>);

fn free_entry(job: &JobRow) -> Option<FreeEntry> {
    (job.state == engine::JobState::Activatable).then(|| {
        let free_at = job.not_before.unwrap_or(0).max(job.lease_until.unwrap_or(0));
        (job.job_type.as_str().into(), job.tenant.as_str().into(), free_at, job.created_at, job.key.as_str().into())
    })
}

/// The tenants with jobs of `job_type` in `jobs_free`, in order, each found
/// by one seek past the one before (a tenant's successor is itself and the
/// least character).
fn free_job_tenants(data: &Data, job_type: &str) -> Vec<String> {
    let mut tenants = Vec::new();
    let mut from: Box<str> = "".into();
    while let Some(((t, tenant, _, _, _), ())) =
        data.jobs_free.range((Box::<str>::from(job_type), from, i64::MIN, i64::MIN, Box::<str>::from(""))..).next()
    {
        if &**t != job_type {
            break;
        }
        from = format!("{tenant}\0").into();
        tenants.push(tenant.to_string());
    }
    tenants
}

/// The entry a job has in `jobs_free`: none while its instance is held.
fn listed_free(data: &Data, job: &JobRow) -> Option<FreeEntry> {
    free_entry(job).filter(|_| !data.held.contains_key(job.instance_id.as_str()))
}

/// The entry the stored job `key` has in `jobs_free`.
fn stored_free_entry(data: &Data, key: &str) -> Option<FreeEntry> {
    data.jobs.get(key).and_then(|job| listed_free(data, job))
}

/// A timer's place in `timers_due`: (due_at, instance id, local key).
type DueEntry = (i64, String, u64);

fn due_entry(timer: &TimerRow) -> DueEntry {
    (timer.due_at, timer.instance_id.clone(), timer.local_key)
}

/// The entry a timer has in `timers_due`: none while its instance is held.
fn listed_due(data: &Data, timer: &TimerRow) -> Option<DueEntry> {
    Some(due_entry(timer)).filter(|_| !data.held.contains_key(timer.instance_id.as_str()))
}

/// Moves a row's entry in one of the polls' orders (`jobs_free`,
/// `timers_due`) from `old` to `new`.
fn move_entry<K>(data: &mut Data, undo: &mut Vec<Undo>, order: fn(&mut Data) -> &mut BTreeMap<K, ()>, old: Option<K>, new: Option<K>)
where
    K: Ord + Clone + Send + 'static,
{
    if old == new {
        return;
    }
    if let Some(old) = old {
        set(data, undo, order, old, None);
    }
    if let Some(new) = new {
        set(data, undo, order, new, Some(()));
    }
}

/// A row's place in its list: the two halves of its cursor, (time, key),
/// in the order the cursor names (`Cursor`).
type Listed = (i64, Box<str>);

/// A row kept in list order.
trait InList {
    fn place(&self) -> Listed;
}

impl InList for JobRow {
    fn place(&self) -> Listed {
        (self.created_at, self.key.as_str().into())
    }
}

impl InList for TaskRow {
    fn place(&self) -> Listed {
        (self.created_at, self.key.as_str().into())
    }
}

impl InList for IncidentRow {
    fn place(&self) -> Listed {
        (self.created_at, self.key.as_str().into())
    }
}

impl InList for TimerRow {
    fn place(&self) -> Listed {
        (self.due_at, local_place(&self.instance_id, self.local_key))
    }
}

impl InList for SubscriptionRow {
    fn place(&self) -> Listed {
        (self.opened_at, local_place(&self.instance_id, self.local_key))
    }
}

impl InList for MessageRow {
    fn place(&self) -> Listed {
        (self.published_at, format!("{:020}", self.seq).into())
    }
}

impl<T: InList> InList for Box<T> {
    fn place(&self) -> Listed {
        (**self).place()
    }
}

/// The key half of the place of a row that an instance's local key names: `id.local_key`.
fn local_place(instance_id: &str, local_key: u64) -> Box<str> {
    format!("{instance_id}.{local_key}").into()
}

/// The (instance id, local key) a [`local_place`] names.
fn local_key_of(place: &str) -> Option<(String, u64)> {
    let (instance_id, local_key) = place.rsplit_once('.')?;
    Some((instance_id.to_string(), local_key.parse().ok()?))
}

/// Sets (or with `None` removes) the row `key` of `table`, and its place in
/// the table's list order `listed`.
fn set_listed<K, V>(
    data: &mut Data,
    undo: &mut Vec<Undo>,
    table: fn(&mut Data) -> &mut BTreeMap<K, V>,
    listed: fn(&mut Data) -> &mut BTreeMap<Listed, ()>,
    key: K,
    row: Option<V>,
) where
    K: Ord + Clone + Send + 'static,
    V: InList + Send + 'static,
{
    let old = table(data).get(&key).map(InList::place);
    move_entry(data, undo, listed, old, row.as_ref().map(InList::place));
    set(data, undo, table, key, row);
}

fn set_job(data: &mut Data, undo: &mut Vec<Undo>, key: Box<str>, row: Option<Box<JobRow>>) {
    set_listed(data, undo, |d| &mut d.jobs, |d| &mut d.jobs_listed, key, row);
}

/// Which of a group's lists of tasks ([`Data::tasks_of_group`]) holds those in `state`.
fn group_list(state: TaskState) -> u8 {
    match state {
        TaskState::Open => 0,
        TaskState::Completed => 1,
        TaskState::All => 2,
    }
}

fn set_task(data: &mut Data, undo: &mut Vec<Undo>, key: String, row: Option<TaskRow>) {
    let groups = |task: &TaskRow| -> Vec<(Box<str>, u8, i64, Box<str>)> {
        let state = group_list(if task.completed_at.is_some() { TaskState::Completed } else { TaskState::Open });
        let entry = |group: &String, list: u8| (group.as_str().into(), list, task.created_at, task.key.as_str().into());
        task.candidate_groups.iter().flat_map(|g| [entry(g, state), entry(g, group_list(TaskState::All))]).collect()
    };
    let old = data.tasks.get(&key).map(groups).unwrap_or_default();
    let new = row.as_ref().map(groups).unwrap_or_default();
    for entry in old.iter().filter(|entry| !new.contains(entry)) {
        set(data, undo, |d| &mut d.tasks_of_group, entry.clone(), None);
    }
    for entry in new {
        set(data, undo, |d| &mut d.tasks_of_group, entry, Some(()));
    }
    set_listed(data, undo, |d| &mut d.tasks, |d| &mut d.tasks_listed, key, row);
}

fn set_incident(data: &mut Data, undo: &mut Vec<Undo>, key: String, row: Option<IncidentRow>) {
    set_listed(data, undo, |d| &mut d.incidents, |d| &mut d.incidents_listed, key, row);
}

/// Sets (or with `None` removes) a timer, its place in its list, and its
/// place in `timers_due` (none while its instance is held).
fn set_timer(data: &mut Data, undo: &mut Vec<Undo>, key: (String, u64), row: Option<TimerRow>) {
    let old = data.timers.get(&key).and_then(|t| listed_due(data, t));
    let new = row.as_ref().and_then(|t| listed_due(data, t));
    move_entry(data, undo, |d| &mut d.timers_due, old, new);
    set_listed(data, undo, |d| &mut d.timers, |d| &mut d.timers_listed, key, row);
}

/// A subscription's place among those waiting for the same thing: (tenant,
/// kind, name, correlation key, opened_at, instance id, local key), the
/// order correlation takes them in.
type Awaited = (Box<str>, bool, Box<str>, Box<str>, i64, Box<str>, u64);

fn awaited(row: &SubscriptionRow) -> Awaited {
    let signal = row.kind == SubscriptionKind::Signal;
    (row.tenant.as_str().into(), signal, row.name.as_str().into(), row.correlation_key.as_str().into(), row.opened_at, row.instance_id.as_str().into(), row.local_key)
}

/// Sets (or with `None` removes) a subscription, and its place by what it waits for.
fn set_subscription(data: &mut Data, undo: &mut Vec<Undo>, key: (String, u64), row: Option<SubscriptionRow>) {
    let old = data.subscriptions.get(&key).map(awaited);
    move_entry(data, undo, |d| &mut d.subscriptions_awaited, old, row.as_ref().map(awaited));
    set_listed(data, undo, |d| &mut d.subscriptions, |d| &mut d.subscriptions_listed, key, row);
}

/// The subscriptions of `tenant` and kind (`signal` or not) named `name`,
/// with the correlation key `correlation_key` (`None`: any), in the order
/// they were opened.
fn awaiting(data: &Data, tenant: &str, signal: bool, name: &str, correlation_key: Option<&str>) -> Vec<SubscriptionRow> {
    let from: Awaited = (tenant.into(), signal, name.into(), correlation_key.unwrap_or("").into(), i64::MIN, "".into(), 0);
    let mut rows: Vec<SubscriptionRow> = data
        .subscriptions_awaited
        .range(from..)
        .map(|(entry, ())| entry)
        .take_while(|(t, s, n, k, _, _, _)| &**t == tenant && *s == signal && &**n == name && correlation_key.is_none_or(|c| &**k == c))
        .filter_map(|(_, _, _, _, _, instance_id, local_key)| data.subscriptions.get(&(instance_id.to_string(), *local_key)))
        .cloned()
        .collect();
    if correlation_key.is_none() {
        rows.sort_by(|a, b| (a.opened_at, &a.instance_id, a.local_key).cmp(&(b.opened_at, &b.instance_id, b.local_key)));
    }
    rows
}

/// A buffered message's place by what it is for: (tenant, name, correlation key, seq).
type MessageName = (Box<str>, Box<str>, Box<str>, u64);

/// Sets (or with `None` removes) the buffered message `seq`, and its places by name, id and expiry.
fn set_message(data: &mut Data, undo: &mut Vec<Undo>, seq: u64, row: Option<MessageRow>) {
    let by_name = |m: &MessageRow| (m.tenant.as_str().into(), m.name.as_str().into(), m.correlation_key.as_str().into(), m.seq);
    let by_id = |m: &MessageRow| m.message_id.as_deref().map(|id| (m.tenant.as_str().into(), id.into(), m.seq));
    let by_expiry = |m: &MessageRow| (m.expires_at, m.seq);
    let old = data.messages.get(&seq);
    let (old_name, old_id, old_expiry) = (old.map(by_name), old.and_then(by_id), old.map(by_expiry));
    move_entry(data, undo, |d| &mut d.messages_by_name, old_name, row.as_ref().map(by_name));
    move_entry(data, undo, |d| &mut d.messages_by_id, old_id, row.as_ref().and_then(by_id));
    move_entry(data, undo, |d| &mut d.messages_by_expiry, old_expiry, row.as_ref().map(by_expiry));
    set_listed(data, undo, |d| &mut d.messages, |d| &mut d.messages_listed, seq, row);
}

/// Where a page of a list by (time, key) starts: after its cursor.
fn after_cursor(page: &PageRequest) -> Result<Bound<Listed>> {
    Ok(match &page.after {
        Some(after) => {
            let (time, key) = split_cursor(after)?;
            Bound::Excluded((time, key.into()))
        }
        None => Bound::Unbounded,
    })
}

/// A page of a list kept in `order`: the rows (found by key with `row`)
/// that match, from the page's cursor on, reading no further than the
/// first that does not fit.
fn listed_page<'a, T: Cursor + Clone + 'a>(
    order: &'a BTreeMap<Listed, ()>,
    row: impl Fn(&str) -> Option<&'a T>,
    matches: impl Fn(&T) -> bool,
    page: &PageRequest,
) -> Result<Page<T>> {
    let in_order = order.range((after_cursor(page)?, Bound::Unbounded)).filter_map(|((_, key), ())| row(key));
    Ok(first_page(in_order.filter(|r| matches(r)), page))
}

/// A page of `rows` (those past the page's cursor, in list order): reads
/// no further than the first that does not fit.
fn first_page<'a, T: Cursor + Clone + 'a>(rows: impl Iterator<Item = &'a T>, page: &PageRequest) -> Page<T> {
    let limit = page.bounded_limit();
    let mut items: Vec<T> = rows.take(limit + 1).cloned().collect();
    let next = (items.len() > limit).then(|| items[limit - 1].cursor());
    items.truncate(limit);
    Page { items, next }
}

/// The rows of `table` whose keys are in `[from, to)`.
fn key_range<'a, K: Ord + std::borrow::Borrow<str>, T>(table: &'a BTreeMap<K, T>, (from, to): &(String, String)) -> impl Iterator<Item = (&'a K, &'a T)> {
    table.range::<str, _>((Bound::Included(from.as_str()), Bound::Excluded(to.as_str())))
}

/// The rows of `table`, keyed by (instance id, local key), that are the instance's own.
fn own_rows<'a, T>(table: &'a BTreeMap<(String, u64), T>, instance_id: &str) -> impl Iterator<Item = &'a T> {
    table.range((instance_id.to_string(), 0)..=(instance_id.to_string(), u64::MAX)).map(|(_, row)| row)
}

fn running(data: &Data, instance_id: &str) -> bool {
    data.instances
        .get(instance_id)
        .is_some_and(|i| i.status == Status::Running)
}

fn sorted<T: Cursor + Clone>(rows: impl Iterator<Item = T>) -> Vec<T> {
    let mut rows: Vec<T> = rows.collect();
    rows.sort_by_cached_key(Cursor::cursor);
    rows
}

impl ReadTxn for MemoryTxn<'_> {
    fn workflows(&mut self) -> Result<Vec<WorkflowRow>> {
        Ok(self.data.workflows.values().cloned().collect())
    }

    fn workflow(
        &mut self,
        tenant: &str,
        process_id: &str,
        version: u32,
    ) -> Result<Option<WorkflowRow>> {
        Ok(self
            .data
            .workflows
            .get(&(tenant.to_string(), process_id.to_string(), version))
            .cloned())
    }

    fn instance(&mut self, id: &str) -> Result<Option<InstanceRow>> {
        self.data
            .instances
            .get(id)
            .map(|stored| stored.decode(id))
            .transpose()
    }

    fn instance_id_by_number(&mut self, number: u64) -> Result<Option<String>> {
        Ok(self.data.instances_by_number.get(&number).map(|id| id.to_string()))
    }

    fn instance_number(&mut self, id: &str) -> Result<Option<(u64, u32)>> {
        Ok(self.data.instances.get(id).map(|stored| (stored.number, stored.version)))
    }

    fn last_instance_number(&mut self) -> Result<u64> {
        Ok(self.data.instances_by_number.last_key_value().map_or(0, |(number, _)| *number))
    }

    fn instance_version(&mut self, id: &str) -> Result<Option<u64>> {
        Ok(self.data.instances.get(id).map(|row| row.update_count))
    }

    fn last_message_seq(&mut self) -> Result<u64> {
        Ok(self.data.messages.last_key_value().map_or(0, |(seq, _)| *seq))
    }

    fn instances(
        &mut self,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<Page<InstanceRow>> {
        let data = &self.data;
        let limit = page.bounded_limit();
        // Its own open incidents, or its descendants' (keys `id/…`).
        let has_incidents = |row: &InstanceRow| {
            row.incidents > 0
                || key_range(&data.incidents, &descendant_range(&row.id))
                    .any(|(_, i)| i.resolved_at.is_none() && is_descendant(&i.instance_id, &row.id))
        };
        let matches = |row: &InstanceRow| filter.matches(row) && filter.has_incidents.is_none_or(|has| has_incidents(row) == has);
        if filter.order != InstanceOrder::Started {
            // Orders other than start time sort the instances whose rows
            // match (this store holds what fits in memory), and decode only
            // those the page takes.
            let mut places: Vec<(&str, i64, &str)> = data
                .instances
                .iter()
                .map(|(id, stored)| stored.summary(id))
                .filter(|row| filter.matches_summary(row))
                .map(|row| (filter.order.lead_of(&row).unwrap_or(""), row.started_at, row.id))
                .collect();
            places.sort_unstable();
            if filter.descending {
                places.reverse();
            }
            if let Some(after) = &page.after {
                let (after_lead, time, id) = filter.order.split(after)?;
                let place = (after_lead.unwrap_or(""), time, id);
                places.retain(|key| if filter.descending { *key < place } else { *key > place });
            }
            let mut rows = Vec::new();
            for (_, _, id) in places {
                let row = data.instances[id].decode(id)?;
                if matches(&row) {
                    rows.push(row);
                    if rows.len() > limit {
                        break;
                    }
                }
            }
            let next = (rows.len() > limit).then(|| filter.order.cursor(&rows[limit - 1]));
            rows.truncate(limit);
            return Ok(Page { items: rows, next });
        }
        let cursor = after_cursor(page)?;
        let mut items: Vec<InstanceRow> = Vec::new();
        let in_order: Box<dyn Iterator<Item = StartEntry>> = if filter.descending {
            Box::new(data.instances_by_start.range((std::ops::Bound::Unbounded, cursor)).rev())
        } else {
            Box::new(data.instances_by_start.range((cursor, std::ops::Bound::Unbounded)))
        };
        for ((_, id), ()) in in_order {
            // The state is decoded only for a row that matches but for what the state says.
            let Some(stored) = data.instances.get(id).filter(|stored| filter.matches_summary(&stored.summary(id))) else {
                continue;
            };
            let row = stored.decode(id)?;
            if matches(&row) {
                items.push(row);
                if items.len() > limit {
                    break;
                }
            }
        }
        let next = (items.len() > limit).then(|| items[limit - 1].cursor());
        items.truncate(limit);
        Ok(Page { items, next })
    }

    fn instance_by_request(&mut self, tenant: &str, request_id: &str) -> Result<Option<String>> {
        Ok(self
            .data
            .requests
            .get(&(tenant.to_string(), request_id.to_string()))
            .cloned())
    }

    fn message_started_active(
        &mut self,
        tenant: &str,
        process_id: &str,
        correlation_key: &str,
    ) -> Result<bool> {
        // The instances of this start key, through their own order (a
        // message start asks this: a walk of every instance grew with them).
        let data = &self.data;
        let from: StartKeyEntry = (tenant.into(), process_id.into(), correlation_key.into(), "".into());
        Ok(data
            .instances_by_start_key
            .range(from..)
            .take_while(|((t, p, k, _), ())| **t == *tenant && **p == *process_id && **k == *correlation_key)
            .any(|((_, _, _, id), ())| data.instances.get(id).is_some_and(|i| !i.status.is_ended())))
    }

    fn history(
        &mut self,
        instance_id: &str,
        filter: &HistoryFilter,
        page: &PageRequest,
    ) -> Result<Page<HistoryRow>> {
        let after = sequence_cursor(page.after.as_deref())?;
        let limit = page.bounded_limit();
        let mut items: Vec<HistoryRow> = Vec::new();
        if let Some(history) = self.data.history.get(instance_id) {
            let start = history.seqs.partition_point(|&seq| seq <= after);
            for index in start..history.seqs.len() {
                let entry = history.entry(index)?;
                if filter.matches(&entry) {
                    items.push(HistoryRow {
                        instance_id: instance_id.to_string(),
                        seq: history.seqs[index],
                        entry,
                    });
                    if items.len() > limit {
                        break;
                    }
                }
            }
        }
        let next = (items.len() > limit).then(|| items[limit - 1].cursor());
        items.truncate(limit);
        Ok(Page { items, next })
    }

    fn job(&mut self, key: &str) -> Result<Option<JobRow>> {
        Ok(self.data.jobs.get(key).map(|job| JobRow::clone(job)))
    }

    fn jobs(&mut self, filter: &JobFilter, page: &PageRequest) -> Result<Page<JobRow>> {
        let data = &self.data;
        match &filter.instance_id {
            // An instance's jobs are a range of keys.
            Some(id) => paginate(sorted(key_range(&data.jobs, &item_keys_of(id)).map(|(_, job)| &**job).filter(|r| filter.matches(r)).cloned()), page),
            None => listed_page(&data.jobs_listed, |key| data.jobs.get(key).map(|job| &**job), |r| filter.matches(r), page),
        }
    }

    fn activatable_jobs(
        &mut self,
        job_type: &str,
        tenants: &Tenants,
        now: i64,
        limit: usize,
    ) -> Result<Vec<JobRow>> {
        // As the SQL stores read it: the jobs never leased nor backed off in
        // creation order, and those that came free by `now` in the order they
        // did, merged by age; neither walks the jobs workers hold or that
        // wait out a backoff.
        // Each tenant's free jobs are ranges of their own.
        let data = &self.data;
        let free = |tenant: &str, from: i64, to: i64| {
            let (job_type, tenant): (Box<str>, Box<str>) = (job_type.into(), tenant.into());
            data.jobs_free
                .range((job_type.clone(), tenant.clone(), from, i64::MIN, Box::<str>::from(""))..)
                .take_while(move |((t, n, free_at, _, _), ())| *t == job_type && *n == tenant && *free_at <= to)
                .filter_map(|((_, _, _, _, key), ())| data.jobs.get(key))
                .filter(|j| running(data, &j.instance_id))
                .take(limit)
        };
        let tenants = match tenants {
            Some(tenants) => each_tenant(tenants),
            None => free_job_tenants(data, job_type),
        };
        let mut jobs: Vec<&JobRow> = Vec::new();
        for tenant in &tenants {
            jobs.extend(free(tenant, 0, 0).chain(free(tenant, 1, now)).map(|job| &**job));
            jobs.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
            jobs.truncate(limit);
        }
        Ok(jobs.into_iter().cloned().collect())
    }

    fn task(&mut self, key: &str) -> Result<Option<TaskRow>> {
        Ok(self.data.tasks.get(key).cloned())
    }

    fn tasks(&mut self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<TaskRow>> {
        let data = &self.data;
        match &filter.instance_id {
            Some(id) => paginate(sorted(key_range(&data.tasks, &item_keys_of(id)).map(|(_, task)| task).filter(|r| filter.matches(r)).cloned()), page),
            None => match &filter.candidate_group {
                // A group's tasks, from their own order.
                Some(group) => {
                    let list = group_list(filter.state);
                    let after = match after_cursor(page)? {
                        Bound::Excluded((time, key)) => Bound::Excluded((group.as_str().into(), list, time, key)),
                        _ => Bound::Included((group.as_str().into(), list, i64::MIN, "".into())),
                    };
                    let of_group = data
                        .tasks_of_group
                        .range((after, Bound::Unbounded))
                        .take_while(|((g, l, _, _), ())| **g == **group && *l == list)
                        .filter_map(|((_, _, _, key), ())| data.tasks.get(&**key));
                    Ok(first_page(of_group.filter(|r| filter.matches(r)), page))
                }
                _ => listed_page(&data.tasks_listed, |key| data.tasks.get(key), |r| filter.matches(r), page),
            },
        }
    }

    fn forms(&mut self, tenants: &Tenants, form_id: Option<&str>) -> Result<Vec<FormRow>> {
        Ok(self
            .data
            .forms
            .values()
            .filter(|f| reaches(tenants, &f.tenant) && form_id.is_none_or(|id| f.form_id == id))
            .cloned()
            .collect())
    }

    fn decisions(&mut self, tenants: &Tenants, decision_id: Option<&str>) -> Result<Vec<DecisionRow>> {
        Ok(self
            .data
            .decisions
            .values()
            .filter(|d| reaches(tenants, &d.tenant) && decision_id.is_none_or(|id| d.decision_id == id))
            .cloned()
            .collect())
    }

    fn incident(&mut self, key: &str) -> Result<Option<IncidentRow>> {
        Ok(self.data.incidents.get(key).cloned())
    }

    fn incidents(
        &mut self,
        filter: &IncidentFilter,
        page: &PageRequest,
    ) -> Result<Page<IncidentRow>> {
        let data = &self.data;
        match &filter.instance_id {
            // An instance's incidents, and its descendants' (`id/…`), are a
            // range of keys: `.` and `/` are the characters before `0`.
            Some(id) => {
                let range = if filter.with_descendants { (format!("{id}."), format!("{id}0")) } else { item_keys_of(id) };
                paginate(sorted(key_range(&data.incidents, &range).map(|(_, incident)| incident).filter(|r| filter.matches(r)).cloned()), page)
            }
            None => listed_page(&data.incidents_listed, |key| data.incidents.get(key), |r| filter.matches(r), page),
        }
    }

    fn timers(&mut self, filter: &TimerFilter, page: &PageRequest) -> Result<Page<TimerRow>> {
        let data = &self.data;
        match &filter.instance_id {
            Some(id) => paginate(sorted(own_rows(&data.timers, id).filter(|r| filter.matches(r)).cloned()), page),
            None => listed_page(&data.timers_listed, |place| data.timers.get(&local_key_of(place)?), |r| filter.matches(r), page),
        }
    }

    fn timer(&mut self, instance_id: &str, local_key: u64) -> Result<Option<TimerRow>> {
        Ok(self
            .data
            .timers
            .get(&(instance_id.to_string(), local_key))
            .cloned())
    }

    fn subscriptions(
        &mut self,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<SubscriptionRow>> {
        let data = &self.data;
        match &filter.instance_id {
            Some(id) => paginate(sorted(own_rows(&data.subscriptions, id).filter(|r| filter.matches(r)).cloned()), page),
            None => listed_page(&data.subscriptions_listed, |place| data.subscriptions.get(&local_key_of(place)?), |r| filter.matches(r), page),
        }
    }

    fn messages(
        &mut self,
        filter: &MessageFilter,
        now: i64,
        page: &PageRequest,
    ) -> Result<Page<MessageRow>> {
        let data = &self.data;
        listed_page(&data.messages_listed, |place| data.messages.get(&place.parse().ok()?), |r| filter.matches(r, now), page)
    }

    fn tokens(&mut self) -> Result<Vec<TokenRow>> {
        let mut tokens: Vec<TokenRow> = self.data.tokens.values().cloned().collect();
        tokens.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tokens)
    }

    fn descendant_incidents(&mut self, instance_id: &str) -> Result<u32> {
        Ok(key_range(&self.data.incidents, &descendant_range(instance_id))
            .filter(|(_, i)| i.resolved_at.is_none() && is_descendant(&i.instance_id, instance_id))
            .count() as u32)
    }

    fn message_subscriptions(
        &mut self,
        tenant: &str,
        name: &str,
        correlation_key: &str,
    ) -> Result<Vec<SubscriptionRow>> {
        Ok(awaiting(&self.data, tenant, false, name, Some(correlation_key)))
    }

    fn signal_subscriptions(&mut self, tenant: &str, name: &str) -> Result<Vec<SubscriptionRow>> {
        Ok(awaiting(&self.data, tenant, true, name, None))
    }

    fn buffered_messages(
        &mut self,
        tenant: &str,
        name: &str,
        correlation_key: &str,
        now: i64,
    ) -> Result<Vec<MessageRow>> {
        let data = &self.data;
        let from = (tenant.into(), name.into(), correlation_key.into(), 0);
        Ok(data
            .messages_by_name
            .range::<MessageName, _>(from..)
            .take_while(|((t, n, k, _), ())| &**t == tenant && &**n == name && &**k == correlation_key)
            .filter_map(|((_, _, _, seq), ())| data.messages.get(seq))
            .filter(|m| m.expires_at > now)
            .cloned()
            .collect())
    }

    fn message_by_id(
        &mut self,
        tenant: &str,
        message_id: &str,
        now: i64,
    ) -> Result<Option<MessageRow>> {
        let data = &self.data;
        let from = (tenant.into(), message_id.into(), 0);
        Ok(data
            .messages_by_id
            .range::<(Box<str>, Box<str>, u64), _>(from..)
            .take_while(|((t, id, _), ())| &**t == tenant && &**id == message_id)
            .filter_map(|((_, _, seq), ())| data.messages.get(seq))
            .find(|m| m.expires_at > now)
            .cloned())
    }

    fn due_timers(&mut self, now: i64, limit: usize) -> Result<Vec<TimerRow>> {
        let data = &self.data;
        Ok(data
            .timers_due
            .keys()
            .take_while(|(due_at, _, _)| *due_at <= now)
            .filter(|(_, instance_id, _)| running(data, instance_id))
            .filter_map(|(_, instance_id, local_key)| data.timers.get(&(instance_id.clone(), *local_key)).cloned())
            .take(limit)
            .collect())
    }

    fn next_due(&mut self) -> Result<Option<i64>> {
        let data = &self.data;
        let timer = data.timers_due.keys().find(|(_, instance_id, _)| running(data, instance_id)).map(|(due_at, _, _)| *due_at);
        let start = self.data.start_timers.values().map(|t| t.due_at).min();
        Ok(timer.into_iter().chain(start).min())
    }

    fn scheduled_deletion(&mut self, instance_id: &str) -> Result<Option<i64>> {
        Ok(self.data.deletion_at.get(instance_id).copied())
    }

    fn due_deletions(&mut self, now: i64, limit: usize) -> Result<Vec<String>> {
        Ok(self.data.deletions.keys().take_while(|(at, _)| *at <= now).take(limit).map(|(_, id)| id.to_string()).collect())
    }

    fn expired_messages(&mut self, before: i64, limit: usize) -> Result<Vec<u64>> {
        Ok(self.data.messages_by_expiry.keys().take_while(|(at, _)| *at <= before).take(limit).map(|(_, seq)| *seq).collect())
    }

    fn start_timers(&mut self) -> Result<Vec<StartTimerRow>> {
        Ok(self.data.start_timers.values().cloned().collect())
    }

    fn instance_counts(&mut self, tenants: &Tenants) -> Result<Vec<InstanceCount>> {
        Ok(self
            .data
            .counts
            .iter()
            .filter(|((tenant, ..), _)| reaches(tenants, tenant))
            .map(|((tenant, process_id, version, status, with_incidents), &count)| InstanceCount {
                tenant: tenant.clone(),
                process_id: process_id.clone(),
                version: *version,
                status: *status,
                with_incidents: *with_incidents,
                count,
            })
            .collect())
    }
}

impl WriteTxn for MemoryTxn<'_> {
    fn apply(&mut self, write: Write) -> Result<()> {
        let undo = self
            .undo
            .as_mut()
            .ok_or_else(|| Error::other("a read transaction cannot write"))?;
        let data = &mut *self.data;
        match write {
            Write::PutWorkflow(row) => set(
                data,
                undo,
                |d| &mut d.workflows,
                (row.tenant.clone(), row.process_id.clone(), row.version),
                Some(row),
            ),
            Write::PutInstance(row) => self.put_instance(&row)?,
            Write::DeleteInstance { id } => delete_instance(data, undo, &id),
            Write::CancelDeletion { instance_id } => unschedule(data, undo, &instance_id),
            Write::ScheduleDeletion { instance_id, at } => {
                unschedule(data, undo, &instance_id);
                set(data, undo, |d| &mut d.deletions, (at, instance_id.as_str().into()), Some(()));
                set(data, undo, |d| &mut d.deletion_at, Box::<str>::from(instance_id.as_str()), Some(at));
            }
            // Instances are filtered by label from their decoded state.
            // Both are found in the instance's state.
            Write::PutLabels { .. } | Write::IndexVariables { .. } => {}
            Write::HoldWaits { instance_id, held } => {
                // The entries as they are when the instance is not held.
                let own = (instance_id.clone(), 0)..=(instance_id.clone(), u64::MAX);
                let timers: Vec<DueEntry> = data.timers.range(own).map(|(_, t)| due_entry(t)).collect();
                let jobs: Vec<FreeEntry> = key_range(&data.jobs, &item_keys_of(&instance_id)).filter_map(|(_, j)| free_entry(j)).collect();
                let listed = (!held).then_some(());
                set(data, undo, |d| &mut d.held, Box::<str>::from(instance_id), held.then_some(()));
                for due in timers {
                    set(data, undo, |d| &mut d.timers_due, due, listed);
                }
                for free in jobs {
                    set(data, undo, |d| &mut d.jobs_free, free, listed);
                }
            }
            Write::PutToken(row) => set(data, undo, |d| &mut d.tokens, row.id.clone(), Some(row)),
            Write::PutRequest { tenant, request_id, instance_id } => {
                let key = (tenant, request_id);
                if let Some(previous) = data.requests.get(&key) {
                    let listed = (previous.as_str().into(), key.0.clone(), key.1.clone());
                    set(data, undo, |d| &mut d.requests_by_instance, listed, None);
                }
                let listed = (instance_id.as_str().into(), key.0.clone(), key.1.clone());
                set(data, undo, |d| &mut d.requests_by_instance, listed, Some(()));
                set(data, undo, |d| &mut d.requests, key, Some(instance_id));
            }
            Write::PutJob(row) => {
                let key: Box<str> = row.key.as_str().into();
                let (old, new) = (stored_free_entry(data, &key), listed_free(data, &row));
                move_entry(data, undo, |d| &mut d.jobs_free, old, new);
                set_job(data, undo, key, Some(Box::new(row)));
            }
            Write::LeaseJob { key, worker, lease_until, lease } => {
                let key: Box<str> = key.into();
                if let Some(old) = data.jobs.get(&key) {
                    let leased = JobRow { worker, lease_until, lease, ..(**old).clone() };
                    let (old, new) = (listed_free(data, old), listed_free(data, &leased));
                    move_entry(data, undo, |d| &mut d.jobs_free, old, new);
                    set_job(data, undo, key, Some(Box::new(leased)));
                }
            }
            Write::DeleteJob { key } => {
                let key: Box<str> = key.into();
                let old = stored_free_entry(data, &key);
                move_entry(data, undo, |d| &mut d.jobs_free, old, None);
                set_job(data, undo, key, None);
            }
            Write::PutTimer(row) => set_timer(data, undo, (row.instance_id.clone(), row.local_key), Some(row)),
            Write::DeleteTimer { instance_id, local_key } => set_timer(data, undo, (instance_id, local_key), None),
            Write::PutSubscription(row) => set_subscription(data, undo, (row.instance_id.clone(), row.local_key), Some(row)),
            Write::DeleteSubscription { instance_id, local_key } => set_subscription(data, undo, (instance_id, local_key), None),
            Write::PutTask(row) => set_task(data, undo, row.key.clone(), Some(row)),
            Write::DeleteTask { key } => set_task(data, undo, key, None),
            Write::CompleteTask { key, at, by } => {
                if let Some(mut row) = data.tasks.get(&key).cloned() {
                    row.completed_at = Some(at);
                    row.completed_by = by;
                    set_task(data, undo, key, Some(row));
                }
            }
            Write::PutDecision(row) => set(
                data,
                undo,
                |d| &mut d.decisions,
                (row.tenant.clone(), row.decision_id.clone(), row.version),
                Some(row),
            ),
            Write::PutForm(row) => set(
                data,
                undo,
                |d| &mut d.forms,
                (row.tenant.clone(), row.form_id.clone(), row.version),
                Some(row),
            ),
            Write::PutIncident(row) => set_incident(data, undo, row.key.clone(), Some(row)),
            Write::ResolveIncident { key, at, by } => {
                if let Some(mut row) = data.incidents.get(&key).cloned() {
                    row.resolved_at = Some(at);
                    row.resolved_by = by;
                    set_incident(data, undo, key, Some(row));
                }
            }
            Write::AppendHistory(row) => {
                let instance_id: Box<str> = row.instance_id.as_str().into();
                let history = data.history.entry(instance_id.clone()).or_default();
                match history.seqs.last() {
                    Some(&last) if last >= row.seq => {
                        let previous = history.clone();
                        history.place(row)?;
                        undo.push(Box::new(move |d| {
                            d.history.insert(instance_id, previous);
                        }));
                    }
                    _ => {
                        let len = history.seqs.len();
                        history.push(row.seq, &row.entry)?;
                        undo.push(Box::new(move |d| {
                            if len == 0 {
                                d.history.remove(&instance_id);
                            } else if let Some(history) = d.history.get_mut(&instance_id) {
                                history.truncate(len);
                            }
                        }));
                    }
                }
            }
            Write::PutMessage(row) => set_message(data, undo, row.seq, Some(row)),
            Write::DeleteMessage { seq } => set_message(data, undo, seq, None),
            Write::PutStartTimer(row) => set(
                data,
                undo,
                |d| &mut d.start_timers,
                (
                    row.tenant.clone(),
                    row.process_id.clone(),
                    row.element_id.clone(),
                ),
                Some(row),
            ),
            Write::DeleteStartTimers { tenant, process_id } => {
                let keys: Vec<(String, String, String)> = data
                    .start_timers
                    .keys()
                    .filter(|(t, p, _)| *t == tenant && *p == process_id)
                    .cloned()
                    .collect();
                for key in keys {
                    set(data, undo, |d| &mut d.start_timers, key, None);
                }
            }
        }
        Ok(())
    }

    fn put_instance_if(&mut self, row: &InstanceRow, stored: Option<u64>) -> Result<()> {
        let held = self.data.instances.get(row.id.as_str()).map(|old| old.update_count);
        if held != stored {
            return Err(Error::instance_changed(&row.id, stored, held));
        }
        self.put_instance(row)
    }

    fn put_instance(&mut self, row: &InstanceRow) -> Result<()> {
        let undo = self
            .undo
            .as_mut()
            .ok_or_else(|| Error::other("a read transaction cannot write"))?;
        let data = &mut *self.data;
        let id: Box<str> = row.id.as_str().into();
        let before = data.instances.get(&id).map(|old| count_key(&old.tenant, &old.process_id, old.version, old.status, old.incidents));
        recount(data, undo, before, Some(count_key(&row.tenant, &row.process_id, row.version, row.status, row.incidents)));
        match data.instances.get(&id) {
            Some(old) if old.started_at == row.started_at => {}
            old => {
                if let Some(old) = old {
                    set(
                        data,
                        undo,
                        |d| &mut d.instances_by_start,
                        (old.started_at, id.clone()),
                        None,
                    );
                }
                set(
                    data,
                    undo,
                    |d| &mut d.instances_by_start,
                    (row.started_at, id.clone()),
                    Some(()),
                );
            }
        }
        // The instance's place by start key moves only where what it is made
        // of changed (nearly never): nothing is built for a write that leaves it.
        let old = data.instances.get(&id);
        let moved = old.is_none_or(|old| (old.tenant.as_str(), old.process_id.as_str(), &old.start_key) != (row.tenant.as_str(), row.process_id.as_str(), &row.start_key));
        if moved {
            let was_started_by_key = old.and_then(|old| start_key_entry(&old.tenant, &old.process_id, old.start_key.as_deref(), &row.id));
            if let Some(entry) = was_started_by_key {
                set(data, undo, |d| &mut d.instances_by_start_key, entry, None);
            }
            if let Some(entry) = start_key_entry(&row.tenant, &row.process_id, row.start_key.as_deref(), &row.id) {
                set(data, undo, |d| &mut d.instances_by_start_key, entry, Some(()));
            }
        }
        if row.number != 0 && !data.instances_by_number.contains_key(&row.number) {
            set(data, undo, |d| &mut d.instances_by_number, row.number, Some(id.clone()));
        }
        let stored = StoredInstance::encode(row)?;
        set(data, undo, |d| &mut d.instances, id, Some(Box::new(stored)));
        Ok(())
    }

    /// Every write leaves a step in the undo log.
    fn changes(&self) -> Option<u64> {
        self.undo.as_ref().map(|undo| undo.len() as u64)
    }

    fn savepoint(&mut self) -> Result<()> {
        let undo = self
            .undo
            .as_ref()
            .ok_or_else(|| Error::other("a read transaction has no savepoints"))?;
        self.savepoint = Some(undo.len());
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        let mark = self
            .savepoint
            .take()
            .ok_or_else(|| Error::other("no savepoint to roll back to"))?;
        let undo = self
            .undo
            .as_mut()
            .ok_or_else(|| Error::other("a read transaction has no savepoints"))?;
        let since: Vec<Undo> = undo.drain(mark..).collect();
        for step in since.into_iter().rev() {
            step(&mut self.data);
        }
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.savepoint
            .take()
            .map(|_| ())
            .ok_or_else(|| Error::other("no savepoint to release"))
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.outage.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.outage.down.store(true, std::sync::atomic::Ordering::SeqCst);
            // Dropped with its undo log: rolled back.
            return Err(Error::unavailable("the connection to the memory store was lost (simulated)"));
        }
        if self.outage.full.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::unavailable("the memory store refuses commits, as a full disk would (simulated)"));
        }
        self.undo = None;
        Ok(())
    }
}

