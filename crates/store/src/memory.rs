//! The in-memory store: ordered maps behind one lock. For tests, `baton test`
//! and benchmarks labelled `memory`; nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::rows::*;
use crate::{Error, ReadTxn, Result, Store, WriteTxn};

#[derive(Default)]
struct Data {
    workflows: BTreeMap<(String, u32), WorkflowRow>,
    instances: BTreeMap<String, InstanceRow>,
    /// Instances in list order: (started_at, id).
    instances_by_start: BTreeMap<(i64, String), ()>,
    requests: BTreeMap<String, String>,
    jobs: BTreeMap<String, JobRow>,
    /// Jobs by type in activation order: (type, created_at, key).
    jobs_by_type: BTreeMap<(String, i64, String), ()>,
    timers: BTreeMap<(String, u64), TimerRow>,
    subscriptions: BTreeMap<(String, u64), SubscriptionRow>,
    tasks: BTreeMap<String, TaskRow>,
    incidents: BTreeMap<String, IncidentRow>,
    /// Append-only per instance, in order.
    history: BTreeMap<String, Vec<HistoryRow>>,
    messages: BTreeMap<u64, MessageRow>,
    start_timers: BTreeMap<(String, String), StartTimerRow>,
}

#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Data>> {
        self.data.lock().map_err(|_| Error::unavailable("the memory store's lock is poisoned"))
    }
}

impl Store for MemoryStore {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(MemoryTxn { data: self.lock()?, undo: None, savepoint: None }))
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        Ok(Box::new(MemoryTxn { data: self.lock()?, undo: Some(Vec::new()), savepoint: None }))
    }
}

/// Puts back what a write changed, run in reverse order on rollback.
type Undo = Box<dyn FnOnce(&mut Data) + Send>;

struct MemoryTxn<'a> {
    data: MutexGuard<'a, Data>,
    /// `Some` for a write transaction.
    undo: Option<Vec<Undo>>,
    /// The length of the undo log at the savepoint.
    savepoint: Option<usize>,
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

/// Sets (or with `None` removes) a row and records how to undo it.
fn set<K, V>(data: &mut Data, undo: &mut Vec<Undo>, table: fn(&mut Data) -> &mut BTreeMap<K, V>, key: K, value: Option<V>)
where
    K: Ord + Clone + Send + 'static,
    V: Send + 'static,
{
    let previous = match value {
        Some(value) => table(data).insert(key.clone(), value),
        None => table(data).remove(&key),
    };
    undo.push(Box::new(move |data| {
        match previous {
            Some(previous) => table(data).insert(key, previous),
            None => table(data).remove(&key),
        };
    }));
}

fn running(data: &Data, instance_id: &str) -> bool {
    data.instances.get(instance_id).is_some_and(|i| i.status == engine::Status::Running)
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

    fn workflow(&mut self, process_id: &str, version: u32) -> Result<Option<WorkflowRow>> {
        Ok(self.data.workflows.get(&(process_id.to_string(), version)).cloned())
    }

    fn instance(&mut self, id: &str) -> Result<Option<InstanceRow>> {
        Ok(self.data.instances.get(id).cloned())
    }

    fn instances(&mut self, filter: &InstanceFilter, page: &PageRequest) -> Result<Page<InstanceRow>> {
        let data = &self.data;
        let from = match &page.after {
            Some(after) => {
                let (time, id) = after.split_once(':').ok_or_else(|| Error::other(format!("'{after}' is not a cursor")))?;
                let time: i64 = time.parse().map_err(|_| Error::other(format!("'{after}' is not a cursor")))?;
                std::ops::Bound::Excluded((time, id.to_string()))
            }
            None => std::ops::Bound::Unbounded,
        };
        let limit = page.bounded_limit();
        let mut items: Vec<InstanceRow> = data
            .instances_by_start
            .range((from, std::ops::Bound::Unbounded))
            .filter_map(|((_, id), ())| data.instances.get(id))
            .filter(|row| filter.matches(row))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = (items.len() > limit).then(|| items[limit - 1].cursor());
        items.truncate(limit);
        Ok(Page { items, next })
    }

    fn instance_by_request(&mut self, request_id: &str) -> Result<Option<String>> {
        Ok(self.data.requests.get(request_id).cloned())
    }

    fn message_started_active(&mut self, process_id: &str, correlation_key: &str) -> Result<bool> {
        Ok(self.data.instances.values().any(|i| {
            i.process_id == process_id && i.start_key.as_deref() == Some(correlation_key) && !i.status.is_ended()
        }))
    }

    fn history(&mut self, instance_id: &str, page: &PageRequest) -> Result<Page<HistoryRow>> {
        let rows = self.data.history.get(instance_id).map(Vec::as_slice).unwrap_or_default();
        let after: u64 = match &page.after {
            Some(cursor) => cursor.parse().map_err(|_| Error::other(format!("'{cursor}' is not a cursor")))?,
            None => 0,
        };
        let limit = page.bounded_limit();
        let start = rows.partition_point(|row| row.seq <= after);
        let mut items: Vec<HistoryRow> = rows[start..].iter().take(limit + 1).cloned().collect();
        let next = (items.len() > limit).then(|| items[limit - 1].cursor());
        items.truncate(limit);
        Ok(Page { items, next })
    }

    fn job(&mut self, key: &str) -> Result<Option<JobRow>> {
        Ok(self.data.jobs.get(key).cloned())
    }

    fn jobs(&mut self, filter: &JobFilter, page: &PageRequest) -> Result<Page<JobRow>> {
        Ok(paginate(sorted(self.data.jobs.values().filter(|r| filter.matches(r)).cloned()), page))
    }

    fn activatable_jobs(&mut self, job_type: &str, now: i64, limit: usize) -> Result<Vec<JobRow>> {
        let data = &self.data;
        let from = (job_type.to_string(), i64::MIN, String::new());
        Ok(data
            .jobs_by_type
            .range(from..)
            .take_while(|((t, _, _), ())| t == job_type)
            .filter_map(|((_, _, key), ())| data.jobs.get(key))
            .filter(|j| {
                j.state == engine::JobState::Activatable
                    && j.not_before.is_none_or(|t| t <= now)
                    && j.lease_until.is_none_or(|t| t <= now)
                    && running(data, &j.instance_id)
            })
            .take(limit)
            .cloned()
            .collect())
    }

    fn task(&mut self, key: &str) -> Result<Option<TaskRow>> {
        Ok(self.data.tasks.get(key).cloned())
    }

    fn tasks(&mut self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<TaskRow>> {
        Ok(paginate(sorted(self.data.tasks.values().filter(|r| filter.matches(r)).cloned()), page))
    }

    fn incident(&mut self, key: &str) -> Result<Option<IncidentRow>> {
        Ok(self.data.incidents.get(key).cloned())
    }

    fn incidents(&mut self, filter: &IncidentFilter, page: &PageRequest) -> Result<Page<IncidentRow>> {
        Ok(paginate(sorted(self.data.incidents.values().filter(|r| filter.matches(r)).cloned()), page))
    }

    fn message_subscriptions(&mut self, name: &str, correlation_key: &str) -> Result<Vec<SubscriptionRow>> {
        let mut rows: Vec<SubscriptionRow> = self
            .data
            .subscriptions
            .values()
            .filter(|s| s.kind == SubscriptionKind::Message && s.name == name && s.correlation_key == correlation_key)
            .cloned()
            .collect();
        rows.sort_by(|a, b| (a.opened_at, &a.instance_id, a.local_key).cmp(&(b.opened_at, &b.instance_id, b.local_key)));
        Ok(rows)
    }

    fn signal_subscriptions(&mut self, name: &str) -> Result<Vec<SubscriptionRow>> {
        let mut rows: Vec<SubscriptionRow> =
            self.data.subscriptions.values().filter(|s| s.kind == SubscriptionKind::Signal && s.name == name).cloned().collect();
        rows.sort_by(|a, b| (a.opened_at, &a.instance_id, a.local_key).cmp(&(b.opened_at, &b.instance_id, b.local_key)));
        Ok(rows)
    }

    fn buffered_messages(&mut self, name: &str, correlation_key: &str, now: i64) -> Result<Vec<MessageRow>> {
        Ok(self
            .data
            .messages
            .values()
            .filter(|m| m.name == name && m.correlation_key == correlation_key && m.expires_at > now)
            .cloned()
            .collect())
    }

    fn message_by_id(&mut self, message_id: &str, now: i64) -> Result<Option<MessageRow>> {
        Ok(self.data.messages.values().find(|m| m.message_id.as_deref() == Some(message_id) && m.expires_at > now).cloned())
    }

    fn due_timers(&mut self, now: i64, limit: usize) -> Result<Vec<TimerRow>> {
        let data = &self.data;
        let mut rows: Vec<TimerRow> = data.timers.values().filter(|t| t.due_at <= now && running(data, &t.instance_id)).cloned().collect();
        rows.sort_by(|a, b| (a.due_at, &a.instance_id, a.local_key).cmp(&(b.due_at, &b.instance_id, b.local_key)));
        rows.truncate(limit);
        Ok(rows)
    }

    fn next_due(&mut self) -> Result<Option<i64>> {
        let data = &self.data;
        let timer = data.timers.values().filter(|t| running(data, &t.instance_id)).map(|t| t.due_at).min();
        let start = self.data.start_timers.values().map(|t| t.due_at).min();
        Ok(timer.into_iter().chain(start).min())
    }

    fn start_timers(&mut self) -> Result<Vec<StartTimerRow>> {
        Ok(self.data.start_timers.values().cloned().collect())
    }

    fn count_instances(&mut self) -> Result<Vec<(engine::Status, u64)>> {
        let mut counts: BTreeMap<&'static str, (engine::Status, u64)> = BTreeMap::new();
        for instance in self.data.instances.values() {
            counts.entry(instance.status.as_str()).or_insert((instance.status, 0)).1 += 1;
        }
        Ok(counts.into_values().collect())
    }
}

impl WriteTxn for MemoryTxn<'_> {
    fn apply(&mut self, write: Write) -> Result<()> {
        let undo = self.undo.as_mut().ok_or_else(|| Error::other("a read transaction cannot write"))?;
        let data = &mut *self.data;
        match write {
            Write::PutWorkflow(row) => set(data, undo, |d| &mut d.workflows, (row.process_id.clone(), row.version), Some(row)),
            Write::PutInstance(row) => {
                if let Some(old) = data.instances.get(&row.id) {
                    let old_index = (old.started_at, old.id.clone());
                    set(data, undo, |d| &mut d.instances_by_start, old_index, None);
                }
                set(data, undo, |d| &mut d.instances_by_start, (row.started_at, row.id.clone()), Some(()));
                set(data, undo, |d| &mut d.instances, row.id.clone(), Some(*row));
            }
            Write::PutRequest { request_id, instance_id } => set(data, undo, |d| &mut d.requests, request_id, Some(instance_id)),
            Write::PutJob(row) => {
                if let Some(old) = data.jobs.get(&row.key) {
                    let old_index = (old.job_type.clone(), old.created_at, old.key.clone());
                    set(data, undo, |d| &mut d.jobs_by_type, old_index, None);
                }
                set(data, undo, |d| &mut d.jobs_by_type, (row.job_type.clone(), row.created_at, row.key.clone()), Some(()));
                set(data, undo, |d| &mut d.jobs, row.key.clone(), Some(row));
            }
            Write::DeleteJob { key } => {
                if let Some(old) = data.jobs.get(&key) {
                    let old_index = (old.job_type.clone(), old.created_at, old.key.clone());
                    set(data, undo, |d| &mut d.jobs_by_type, old_index, None);
                }
                set(data, undo, |d| &mut d.jobs, key, None);
            }
            Write::PutTimer(row) => set(data, undo, |d| &mut d.timers, (row.instance_id.clone(), row.local_key), Some(row)),
            Write::DeleteTimer { instance_id, local_key } => set(data, undo, |d| &mut d.timers, (instance_id, local_key), None),
            Write::PutSubscription(row) => {
                set(data, undo, |d| &mut d.subscriptions, (row.instance_id.clone(), row.local_key), Some(row))
            }
            Write::DeleteSubscription { instance_id, local_key } => {
                set(data, undo, |d| &mut d.subscriptions, (instance_id, local_key), None)
            }
            Write::PutTask(row) => set(data, undo, |d| &mut d.tasks, row.key.clone(), Some(row)),
            Write::DeleteTask { key } => set(data, undo, |d| &mut d.tasks, key, None),
            Write::PutIncident(row) => set(data, undo, |d| &mut d.incidents, row.key.clone(), Some(row)),
            Write::DeleteIncident { key } => set(data, undo, |d| &mut d.incidents, key, None),
            Write::AppendHistory(row) => {
                let rows = data.history.entry(row.instance_id.clone()).or_default();
                // Rows arrive in order; a repeated seq replaces the row (as the SQL store's upsert does).
                match rows.last() {
                    Some(last) if last.seq >= row.seq => {
                        let position = rows.partition_point(|r| r.seq < row.seq);
                        let instance_id = row.instance_id.clone();
                        if rows.get(position).is_some_and(|r| r.seq == row.seq) {
                            let previous = std::mem::replace(&mut rows[position], row);
                            undo.push(Box::new(move |d| {
                                if let Some(rows) = d.history.get_mut(&instance_id) {
                                    rows[position] = previous;
                                }
                            }));
                        } else {
                            rows.insert(position, row);
                            undo.push(Box::new(move |d| {
                                if let Some(rows) = d.history.get_mut(&instance_id) {
                                    rows.remove(position);
                                }
                            }));
                        }
                    }
                    _ => {
                        let instance_id = row.instance_id.clone();
                        rows.push(row);
                        undo.push(Box::new(move |d| {
                            if let Some(rows) = d.history.get_mut(&instance_id) {
                                rows.pop();
                            }
                        }));
                    }
                }
            }
            Write::PutMessage(row) => set(data, undo, |d| &mut d.messages, row.seq, Some(row)),
            Write::DeleteMessage { seq } => set(data, undo, |d| &mut d.messages, seq, None),
            Write::PutStartTimer(row) => {
                set(data, undo, |d| &mut d.start_timers, (row.process_id.clone(), row.element_id.clone()), Some(row))
            }
            Write::DeleteStartTimers { process_id } => {
                let keys: Vec<(String, String)> =
                    data.start_timers.keys().filter(|(p, _)| *p == process_id).cloned().collect();
                for key in keys {
                    set(data, undo, |d| &mut d.start_timers, key, None);
                }
            }
        }
        Ok(())
    }

    fn savepoint(&mut self) -> Result<()> {
        let undo = self.undo.as_ref().ok_or_else(|| Error::other("a read transaction has no savepoints"))?;
        self.savepoint = Some(undo.len());
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        let mark = self.savepoint.take().ok_or_else(|| Error::other("no savepoint to roll back to"))?;
        let undo = self.undo.as_mut().ok_or_else(|| Error::other("a read transaction has no savepoints"))?;
        let since: Vec<Undo> = undo.drain(mark..).collect();
        for step in since.into_iter().rev() {
            step(&mut self.data);
        }
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.savepoint.take().map(|_| ()).ok_or_else(|| Error::other("no savepoint to release"))
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.undo = None;
        Ok(())
    }
}
