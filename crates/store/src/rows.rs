//! Rows: what the stores keep, one struct per table.

use engine::{HistoryEntry, InstanceState, JobState, Status, Variables};
use serde::{Deserialize, Serialize};

/// The tenant of everything deployed, started or published without one.
pub const DEFAULT_TENANT: &str = "default";

/// The key of an instance's job, user task or incident, unique in the store
/// as instance ids are: the instance's id, a dot, and the item's key in the
/// instance (from the instance's own counter).
pub fn item_key(instance_id: &str, local_key: u64) -> String {
    format!("{instance_id}.{local_key}")
}

/// The [`item_key`]s of an instance's items, as a range: from its id and a
/// dot up to, not including, its id and `/` (the character after the dot),
/// so that a store finds them in its index of keys.
pub fn item_keys_of(instance_id: &str) -> (String, String) {
    (format!("{instance_id}."), format!("{instance_id}/"))
}

/// The tenants a query or a caller reaches: `None`, every one.
pub type Tenants = Option<Vec<String>>;

/// Each tenant `list` names, once, in order: a poll reads each one's rows.
pub fn each_tenant(list: &[String]) -> Vec<String> {
    let mut tenants = list.to_vec();
    tenants.sort_unstable();
    tenants.dedup();
    tenants
}

/// The tenants a list of `tenants` reads, in order: those it names, or
/// (`None`) every tenant that has rows, each found by `next_after` (the
/// least tenant with rows above the one given, or the least of all for
/// `None`): one seek each in an index that leads with the tenant.
pub fn tenants_to_list(tenants: &Tenants, mut next_after: impl FnMut(Option<&str>) -> crate::Result<Option<String>>) -> crate::Result<Vec<String>> {
    if let Some(tenants) = tenants {
        return Ok(each_tenant(tenants));
    }
    let mut found: Vec<String> = Vec::new();
    while let Some(tenant) = next_after(found.last().map(String::as_str))? {
        found.push(tenant);
    }
    Ok(found)
}

/// One page of a list made of the same page of each tenant's rows, read
/// apart (each from its tenant's range of an index in list order, with
/// the same cursor and limit): merged in cursor order, the first `limit`.
/// There is more when more than `limit` were read, or a tenant had more.
/// A cursor that does not read is refused, though no tenant had rows.
/// `descending`: each page, and so the list, runs the other way.
pub fn merge_tenant_pages<T: Cursor>(pages: Vec<Page<T>>, page: &PageRequest, descending: bool) -> crate::Result<Page<T>> {
    if let Some(after) = &page.after {
        split_cursor(after)?;
    }
    Ok(merge_pages_by(pages, page.bounded_limit(), descending, T::cursor, T::cursor))
}

/// [`merge_tenant_pages`] for any order: `key` sorts rows as the pages
/// are sorted, `cursor` names the last one kept.
fn merge_pages_by<T, K: Ord>(pages: Vec<Page<T>>, limit: usize, descending: bool, key: impl FnMut(&T) -> K, cursor: impl Fn(&T) -> String) -> Page<T> {
    let several = pages.len() > 1;
    let mut more = false;
    let mut items = Vec::new();
    for page in pages {
        more |= page.next.is_some();
        items.extend(page.items);
    }
    if several {
        items.sort_by_cached_key(key);
        if descending {
            items.reverse();
        }
    }
    more |= items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(cursor) } else { None };
    Page { items, next }
}

/// Whether a SQL store reads a list of instances tenant by tenant: its
/// indexes by status and by workflow lead with the tenant (so that one
/// tenant's running instances, or its instances of a workflow, are one
/// range in start order), and so does the one by tenant and start. A list
/// of several tenants, or of every one, that would read one of those is
/// the same page of each tenant's range, merged. One in start order
/// without a status or workflow reads `instances_by_start` (every tenant
/// in start order) instead, and a filter that picks its instances by
/// another index (variable, business key, label, parent, root, incidents)
/// reads that, whatever the tenants.
pub fn instances_read_by_tenant(filter: &InstanceFilter) -> bool {
    let one_tenant = filter.tenants.as_ref().is_some_and(|tenants| tenants.len() == 1);
    let picked = filter.variable.is_some()
        || filter.business_key.is_some()
        || filter.label.is_some()
        || filter.parent_id.is_some()
        || filter.root_id.is_some()
        || filter.has_incidents == Some(true);
    let by_tenant_index = filter.order != InstanceOrder::Started || filter.status.is_some() || filter.process_id.is_some() || filter.tenants.is_some();
    !one_tenant && !picked && by_tenant_index
}

/// A list of instances read tenant by tenant ([`instances_read_by_tenant`]):
/// the tenants named, or each that has instances (`next_tenant`, as
/// [`tenants_to_list`] takes it), each one's page (`one`, for the filter
/// with that tenant alone) and the pages merged in the list's order.
/// `None` for a list the store reads as it is.
pub fn instances_tenant_by_tenant<S: ?Sized>(
    store: &mut S,
    filter: &InstanceFilter,
    page: &PageRequest,
    next_tenant: fn(&mut S, Option<&str>) -> crate::Result<Option<String>>,
    one: fn(&mut S, &InstanceFilter, &PageRequest) -> crate::Result<Page<InstanceRow>>,
) -> Option<crate::Result<Page<InstanceRow>>> {
    instances_read_by_tenant(filter).then(|| read_by_tenant(store, filter, page, next_tenant, one))
}

fn read_by_tenant<S: ?Sized>(
    store: &mut S,
    filter: &InstanceFilter,
    page: &PageRequest,
    next_tenant: fn(&mut S, Option<&str>) -> crate::Result<Option<String>>,
    one: fn(&mut S, &InstanceFilter, &PageRequest) -> crate::Result<Page<InstanceRow>>,
) -> crate::Result<Page<InstanceRow>> {
    if let Some(after) = &page.after {
        filter.order.split(after)?;
    }
    let tenants = tenants_to_list(&filter.tenants, |after| next_tenant(store, after))?;
    let mut pages = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        pages.push(one(store, &InstanceFilter { tenants: Some(vec![tenant]), ..filter.clone() }, page)?);
    }
    let order = filter.order;
    let key = |row: &InstanceRow| (order.lead(row).map(str::to_owned), row.started_at, row.id.clone());
    Ok(merge_pages_by(pages, page.bounded_limit(), filter.descending, key, |row| order.cursor(row)))
}

/// Whether `tenants` reaches `tenant`.
pub fn reaches(tenants: &Tenants, tenant: &str) -> bool {
    tenants
        .as_ref()
        .is_none_or(|list| list.iter().any(|t| t == tenant))
}

/// One deployed version of a workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRow {
    pub process_id: String,
    /// The tenant it was deployed to: versions count per tenant and process id.
    pub tenant: String,
    pub version: u32,
    /// Which deployment brought it (call activities can bind to it).
    pub deployment: u64,
    pub name: Option<String>,
    pub version_tag: Option<String>,
    pub xml: String,
    pub deployed_at: i64,
}

/// An instance: its summary columns, for queries, and its whole state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub id: String,
    /// A number unique in the store, given in creation order (1, 2, ...):
    /// what Camunda-style 64-bit keys are made from (`api::camunda::keys`).
    /// It never changes.
    #[serde(default)]
    pub number: u64,
    pub process_id: String,
    /// Its workflow's tenant.
    pub tenant: String,
    pub version: u32,
    pub status: Status,
    pub business_key: Option<String>,
    pub parent_id: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub incidents: u32,
    /// What its tokens wait for: `job`, `user_task`, `timer`, `message`, `signal`, `call`.
    pub waiting: Vec<String>,
    /// The correlation key of the message that started it, if a message did.
    pub start_key: Option<String>,
    pub update_count: u64,
    /// How many history rows it has; the next one gets `history_count + 1`.
    pub history_count: u64,
    pub state: InstanceState,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    /// Globally unique: `<instance id>.<local key>`.
    pub key: String,
    pub instance_id: String,
    pub local_key: u64,
    pub process_id: String,
    pub tenant: String,
    pub element_id: String,
    pub job_type: String,
    pub retries: u32,
    pub state: JobState,
    pub not_before: Option<i64>,
    pub error_message: Option<String>,
    pub worker: Option<String>,
    pub lease_until: Option<i64>,
    /// The token of the current lease: the worker that holds the job proves it with this.
    pub lease: Option<String>,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerRow {
    pub instance_id: String,
    pub tenant: String,
    pub local_key: u64,
    pub element_id: String,
    pub due_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionKind {
    Message,
    Signal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    pub instance_id: String,
    pub tenant: String,
    pub local_key: u64,
    pub element_id: String,
    pub kind: SubscriptionKind,
    pub name: String,
    /// Empty for signals.
    pub correlation_key: String,
    pub opened_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    /// Globally unique: `<instance id>.<local key>`.
    pub key: String,
    pub instance_id: String,
    pub local_key: u64,
    pub process_id: String,
    pub tenant: String,
    pub element_id: String,
    pub assignee: Option<String>,
    pub candidate_groups: Vec<String>,
    pub candidate_users: Vec<String>,
    pub due: Option<String>,
    pub follow_up: Option<String>,
    pub priority: Option<i64>,
    pub form_key: Option<String>,
    pub created_at: i64,
    /// When someone completed it; `None` while open. (A task ended any other
    /// way, by a boundary event or a cancellation, is removed.)
    #[serde(default)]
    pub completed_at: Option<i64>,
    #[serde(default)]
    pub completed_by: Option<String>,
}

/// How many instances of one workflow version have one status (and whether
/// they have open incidents of their own): kept as instances are written, so
/// counting costs nothing however many instances there are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCount {
    pub tenant: String,
    pub process_id: String,
    pub version: u32,
    pub status: Status,
    pub with_incidents: bool,
    pub count: u64,
}

/// One deployed version of a DMN decision: the whole file it is in (its
/// required decisions and knowledge come with it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub tenant: String,
    pub decision_id: String,
    pub version: u32,
    pub deployment: u64,
    pub name: String,
    /// The id of the file's `definitions` (its decision requirements graph).
    pub definitions_id: String,
    /// The file's name in its deployment.
    pub resource: String,
    pub xml: String,
    pub deployed_at: i64,
}

/// One deployed version of a form (a Camunda Form's JSON schema), which user tasks link by its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormRow {
    pub tenant: String,
    /// The schema's `id`.
    pub form_id: String,
    pub version: u32,
    pub deployment: u64,
    /// The schema's `versionTag`, which a `bindingType="versionTag"` picks.
    pub version_tag: Option<String>,
    /// The file's name in its deployment.
    pub resource: String,
    pub schema: String,
    pub deployed_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    /// Globally unique: `<instance id>.<local key>`.
    pub key: String,
    pub instance_id: String,
    pub local_key: u64,
    pub process_id: String,
    pub tenant: String,
    pub element_id: String,
    pub kind: String,
    pub message: String,
    pub created_at: i64,
    /// When it was resolved (by an operator, or closed as its element ended); `None` while open.
    pub resolved_at: Option<i64>,
    /// Who resolved it; `None` when the engine closed it.
    pub resolved_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub instance_id: String,
    /// Order within the instance, from 1.
    pub seq: u64,
    pub entry: HistoryEntry,
}

/// A published message kept for its time to live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageRow {
    /// Order of publication.
    pub seq: u64,
    /// Only instances of this tenant receive it.
    pub tenant: String,
    pub name: String,
    pub correlation_key: String,
    pub variables: Variables,
    pub published_at: i64,
    pub expires_at: i64,
    pub message_id: Option<String>,
    /// Processes it was correlated to: a message reaches each process at most once.
    pub correlated: Vec<String>,
}

/// The timer of a timer start event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartTimerRow {
    pub process_id: String,
    pub tenant: String,
    pub version: u32,
    pub element_id: String,
    pub due_at: i64,
    /// Firings left after the next one (`None`: forever), and the repetition
    /// (`bpmn::timer::next_due`); `None` for a one-shot date.
    pub repeat: Option<(Option<u32>, String)>,
}

/// An API token: who holds it (its name), what they may do, and the hash
/// of its secret (the secret itself is shown once and never kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    /// SHA-256 of the whole token, hex.
    pub hash: String,
    pub roles: Vec<String>,
    /// For `worker`: the only job types it may take (`None`: any).
    pub job_types: Option<Vec<String>>,
    /// For `starter` and `user`: the only workflows it may start (`None`: any).
    pub workflows: Option<Vec<String>>,
    /// Candidate groups the holder belongs to, for user tasks.
    pub groups: Vec<String>,
    /// The tenants its holder reaches; `*` for every one.
    pub tenants: Vec<String>,
    /// For `viewer`: variable values are hidden from it.
    pub hide_variables: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A change to the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    PutWorkflow(WorkflowRow),
    /// Inserts or replaces an instance.
    PutInstance(Box<InstanceRow>),
    /// Removes an instance and every row of it: its history, jobs, timers,
    /// subscriptions, tasks, incidents, labels, request ids and scheduled deletion.
    DeleteInstance {
        id: String,
    },
    /// The ended instance may be deleted from `at` on (its retention runs
    /// out then); replaces an earlier schedule of it.
    ScheduleDeletion {
        instance_id: String,
        at: i64,
    },
    /// The instance was suspended (`held`) or resumed. While it is held its
    /// timers and jobs are neither due nor to be taken; a store whose
    /// indexes say what is due and what is free leaves them out of those,
    /// so that what is suspended costs the polls nothing.
    HoldWaits {
        instance_id: String,
        held: bool,
    },
    /// The instance is no longer to be deleted (it runs again).
    CancelDeletion {
        instance_id: String,
    },
    /// Replaces the labels of an instance (they are also in its state), so
    /// that instances are found by label through an index.
    PutLabels {
        instance_id: String,
        labels: std::collections::BTreeMap<String, String>,
    },
    /// The instance's own variables (also in its state) changed; sent
    /// before the instance's new row. A store that finds instances by
    /// variable through an index of its own writes the entries that differ.
    IndexVariables {
        instance_id: String,
        changes: VariableChanges,
    },
    /// A start request id that made an instance, so a repeated request finds it.
    PutRequest {
        tenant: String,
        request_id: String,
        instance_id: String,
    },
    /// Writes a job, new or changed. What a job is (its key, instance,
    /// element, type, creation time, tenant) is written once: a store may
    /// set only the rest when the key is already there.
    PutJob(JobRow),
    /// A stored job handed to a worker: its worker, lease and lease token
    /// alone change (what the job is, its state and its place in the queue
    /// stay as they are, so a store need not touch the index it is found by).
    /// A job that is not stored is left so.
    LeaseJob {
        key: String,
        worker: Option<String>,
        lease_until: Option<i64>,
        lease: Option<String>,
    },
    DeleteJob {
        key: String,
    },
    PutTimer(TimerRow),
    DeleteTimer {
        instance_id: String,
        local_key: u64,
    },
    PutSubscription(SubscriptionRow),
    DeleteSubscription {
        instance_id: String,
        local_key: u64,
    },
    PutTask(TaskRow),
    DeleteTask {
        key: String,
    },
    /// Marks a user task completed; it stays listed as such.
    CompleteTask {
        key: String,
        at: i64,
        by: Option<String>,
    },
    PutForm(FormRow),
    PutDecision(DecisionRow),
    PutIncident(IncidentRow),
    /// Marks an incident resolved; it stays listed as such.
    ResolveIncident {
        key: String,
        at: i64,
        by: Option<String>,
    },
    AppendHistory(HistoryRow),
    PutMessage(MessageRow),
    DeleteMessage {
        seq: u64,
    },
    PutStartTimer(StartTimerRow),
    /// Inserts or replaces a token (a revocation sets `revoked_at`).
    PutToken(TokenRow),
    /// Removes every start timer of a process (a new version replaces them).
    DeleteStartTimers {
        tenant: String,
        process_id: String,
    },
}

/// Which instances to list. Every field set must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceFilter {
    /// Only these tenants (`None`: every one).
    pub tenants: Tenants,
    pub status: Option<Status>,
    pub process_id: Option<String>,
    /// With `process_id`: only this version of it.
    pub version: Option<u32>,
    pub business_key: Option<String>,
    /// One of the `waiting` kinds of [`InstanceRow`].
    pub waiting: Option<String>,
    /// Open incidents of its own or of an instance it called, directly or further down.
    pub has_incidents: Option<bool>,
    pub started_after: Option<i64>,
    pub started_before: Option<i64>,
    pub ended_after: Option<i64>,
    pub ended_before: Option<i64>,
    /// A variable of the instance's own scope equals this JSON value.
    pub variable: Option<(String, serde_json::Value)>,
    pub parent_id: Option<String>,
    /// A label of the instance has this value.
    pub label: Option<(String, String)>,
    /// The instance is this root or was called from it, directly or further down.
    pub root_id: Option<String>,
    /// The order of the list: by start time, or by workflow or status and then start time.
    pub order: InstanceOrder,
    /// The other way round (the latest started first, for `Started`).
    pub descending: bool,
}

/// What instances are listed by. Each is an index of the store, so a page
/// costs the same however deep into the list it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceOrder {
    #[default]
    Started,
    /// By process id, then start time.
    Workflow,
    /// By status (as its name spells), then start time.
    Status,
}

impl InstanceOrder {
    /// What a row sorts by before its start time; `None` for `Started`.
    pub fn lead(self, row: &InstanceRow) -> Option<&str> {
        self.lead_of(&row.summary())
    }

    /// [`Self::lead`] of a row's summary.
    pub fn lead_of<'a>(self, row: &InstanceSummary<'a>) -> Option<&'a str> {
        match self {
            InstanceOrder::Started => None,
            InstanceOrder::Workflow => Some(row.process_id),
            InstanceOrder::Status => Some(row.status.as_str()),
        }
    }

    /// A row's place in this order, as a page's `next` names it.
    pub fn cursor(self, row: &InstanceRow) -> String {
        match self.lead(row) {
            Some(lead) => format!("{lead}|{}", row.cursor()),
            None => row.cursor(),
        }
    }

    /// A cursor of this order: the lead (for `Workflow` and `Status`), start time and id.
    pub fn split(self, cursor: &str) -> crate::Result<(Option<&str>, i64, &str)> {
        let (lead, rest) = match self {
            InstanceOrder::Started => (None, cursor),
            _ => {
                let (lead, rest) = cursor.split_once('|').ok_or_else(|| crate::Error::bad_cursor(cursor))?;
                (Some(lead), rest)
            }
        };
        let (time, id) = split_cursor(rest)?;
        Ok((lead, time, id))
    }
}

impl InstanceFilter {
    /// Whether the row matches every field but `has_incidents`, which needs
    /// the incidents of the instance's descendants: each store answers it
    /// from its incident rows.
    pub fn matches(&self, row: &InstanceRow) -> bool {
        self.matches_summary(&row.summary())
            && self
                .variable
                .as_ref()
                .is_none_or(|(name, value)| row.state.variables.get(name) == Some(value))
            && self
                .label
                .as_ref()
                .is_none_or(|(name, value)| row.state.labels.get(name) == Some(value))
    }

    /// Whether the instance matches every field but those its state
    /// answers (`variable`, `label`) and `has_incidents`: what a store
    /// that keeps the state encoded tests before it decodes it.
    pub fn matches_summary(&self, row: &InstanceSummary<'_>) -> bool {
        reaches(&self.tenants, row.tenant)
            && self.status.is_none_or(|s| row.status == s)
            && self.process_id.as_deref().is_none_or(|p| row.process_id == p)
            && self.version.is_none_or(|v| row.version == v)
            && self.business_key.as_deref().is_none_or(|k| row.business_key == Some(k))
            && self.waiting.as_ref().is_none_or(|w| row.waiting.contains(w))
            && self.started_after.is_none_or(|t| row.started_at >= t)
            && self.started_before.is_none_or(|t| row.started_at < t)
            && self.ended_after.is_none_or(|t| row.ended_at.is_some_and(|e| e >= t))
            && self.ended_before.is_none_or(|t| row.ended_at.is_some_and(|e| e < t))
            && self.parent_id.as_deref().is_none_or(|p| row.parent_id == Some(p))
            && self.root_id.as_deref().is_none_or(|root| row.id == root || is_descendant(row.id, root))
    }
}

/// An instance's row but its state: what most filters test.
pub struct InstanceSummary<'a> {
    pub id: &'a str,
    pub tenant: &'a str,
    pub status: Status,
    pub process_id: &'a str,
    pub version: u32,
    pub business_key: Option<&'a str>,
    pub parent_id: Option<&'a str>,
    pub waiting: &'a [String],
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

impl InstanceRow {
    pub fn summary(&self) -> InstanceSummary<'_> {
        InstanceSummary {
            id: &self.id,
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
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Only these tenants (`None`: every one).
    pub tenants: Tenants,
    pub job_type: Option<String>,
    pub instance_id: Option<String>,
    pub state: Option<JobState>,
}

impl JobFilter {
    pub fn matches(&self, row: &JobRow) -> bool {
        reaches(&self.tenants, &row.tenant)
            && self.job_type.as_ref().is_none_or(|t| &row.job_type == t)
            && self
                .instance_id
                .as_ref()
                .is_none_or(|i| &row.instance_id == i)
            && self.state.is_none_or(|s| row.state == s)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskFilter {
    /// Only these tenants (`None`: every one).
    pub tenants: Tenants,
    pub assignee: Option<String>,
    pub candidate_group: Option<String>,
    pub process_id: Option<String>,
    pub instance_id: Option<String>,
    /// Open (the default), completed, or both.
    pub state: TaskState,
    /// Completed by this principal.
    pub completed_by: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    #[default]
    Open,
    Completed,
    All,
}

impl TaskFilter {
    pub fn matches(&self, row: &TaskRow) -> bool {
        reaches(&self.tenants, &row.tenant)
            && match self.state {
                TaskState::Open => row.completed_at.is_none(),
                TaskState::Completed => row.completed_at.is_some(),
                TaskState::All => true,
            }
            && self
                .completed_by
                .as_ref()
                .is_none_or(|by| row.completed_by.as_ref() == Some(by))
            && self
                .assignee
                .as_ref()
                .is_none_or(|a| row.assignee.as_ref() == Some(a))
            && self
                .candidate_group
                .as_ref()
                .is_none_or(|g| row.candidate_groups.contains(g))
            && self
                .process_id
                .as_ref()
                .is_none_or(|p| &row.process_id == p)
            && self
                .instance_id
                .as_ref()
                .is_none_or(|i| &row.instance_id == i)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentFilter {
    /// Only these tenants (`None`: every one).
    pub tenants: Tenants,
    /// Open (the default), resolved, or both.
    pub state: IncidentState,
    pub instance_id: Option<String>,
    /// With `instance_id`: the incidents of the instances it called too, directly or further down.
    pub with_descendants: bool,
    pub process_id: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    #[default]
    Open,
    Resolved,
    All,
}

impl IncidentState {
    pub fn matches(self, row: &IncidentRow) -> bool {
        match self {
            IncidentState::Open => row.resolved_at.is_none(),
            IncidentState::Resolved => row.resolved_at.is_some(),
            IncidentState::All => true,
        }
    }
}

impl IncidentFilter {
    pub fn matches(&self, row: &IncidentRow) -> bool {
        reaches(&self.tenants, &row.tenant)
            && self.state.matches(row)
            && self.instance_id.as_ref().is_none_or(|i| {
                &row.instance_id == i
                    || (self.with_descendants && is_descendant(&row.instance_id, i))
            })
            && self
                .process_id
                .as_ref()
                .is_none_or(|p| &row.process_id == p)
    }
}

/// Whether `id` names an instance that `ancestor` called, directly or further
/// down. A called instance's id is its caller's id, `/`, and a key, so the
/// descendants of `a` are exactly the ids from `a/` up to (not including) `a0`
/// (`0` follows `/` in ASCII): one index range in a store.
pub fn is_descendant(id: &str, ancestor: &str) -> bool {
    id.strip_prefix(ancestor)
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'))
}

/// The half-open key range `[from, to)` that holds exactly the descendants of `ancestor`.
pub fn descendant_range(ancestor: &str) -> (String, String) {
    (format!("{ancestor}/"), format!("{ancestor}0"))
}

/// Which pending timers to list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimerFilter {
    /// Only these tenants (`None`: every one).
    pub tenants: Tenants,
    pub instance_id: Option<String>,
    /// Due at or before this time.
    pub due_before: Option<i64>,
}

impl TimerFilter {
    pub fn matches(&self, row: &TimerRow) -> bool {
        reaches(&self.tenants, &row.tenant)
            && self
                .instance_id
                .as_ref()
                .is_none_or(|i| &row.instance_id == i)
            && self.due_before.is_none_or(|t| row.due_at <= t)
    }
}

/// Which open message and signal subscriptions to list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionFilter {
    /// Only these tenants (`None`: every one).
    pub tenants: Tenants,
    pub instance_id: Option<String>,
    pub kind: Option<SubscriptionKind>,
    pub name: Option<String>,
}

impl SubscriptionFilter {
    pub fn matches(&self, row: &SubscriptionRow) -> bool {
        reaches(&self.tenants, &row.tenant)
            && self
                .instance_id
                .as_ref()
                .is_none_or(|i| &row.instance_id == i)
            && self.kind.is_none_or(|k| row.kind == k)
            && self.name.as_ref().is_none_or(|n| &row.name == n)
    }
}

/// Which published messages to list: those still buffered (waiting for a
/// subscriber), or those that expired before any process took them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    #[default]
    Buffered,
    Undelivered,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageFilter {
    /// Only these tenants (`None`: every one).
    pub tenants: Tenants,
    pub state: MessageState,
    pub name: Option<String>,
}

impl MessageFilter {
    pub fn matches(&self, row: &MessageRow, now: i64) -> bool {
        let state = match self.state {
            MessageState::Buffered => row.expires_at > now,
            MessageState::Undelivered => row.expires_at <= now && row.correlated.is_empty(),
        };
        state
            && reaches(&self.tenants, &row.tenant)
            && self.name.as_ref().is_none_or(|n| &row.name == n)
    }
}

/// Which history entries of an instance to list. Every field set must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryFilter {
    pub element_id: Option<String>,
    pub element_type: Option<String>,
    pub event: Option<engine::HistoryEvent>,
    pub run: Option<u32>,
}

impl HistoryFilter {
    pub fn matches(&self, entry: &HistoryEntry) -> bool {
        self.element_id
            .as_ref()
            .is_none_or(|e| &entry.element_id == e)
            && self
                .element_type
                .as_ref()
                .is_none_or(|t| &entry.element_type == t)
            && self.event.is_none_or(|e| entry.event == e)
            && self.run.is_none_or(|r| entry.run == r)
    }
}

/// A page request: at most `limit` rows after the cursor `after`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: usize,
}

impl PageRequest {
    pub const MAX_LIMIT: usize = 1000;

    pub fn first(limit: usize) -> PageRequest {
        PageRequest { after: None, limit }
    }

    /// The limit, kept between 1 and [`Self::MAX_LIMIT`].
    pub fn bounded_limit(&self) -> usize {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor for the next page; `None` on the last.
    pub next: Option<String>,
}

/// The keys instances, jobs, tasks and incidents are listed by: a cursor is
/// the last key of a page.
pub trait Cursor {
    fn cursor(&self) -> String;
}

impl Cursor for InstanceRow {
    /// Instances list in start order; ids break ties.
    fn cursor(&self) -> String {
        format!("{:020}:{}", self.started_at, self.id)
    }
}

impl Cursor for JobRow {
    fn cursor(&self) -> String {
        format!("{:020}:{}", self.created_at, self.key)
    }
}

impl Cursor for TaskRow {
    fn cursor(&self) -> String {
        format!("{:020}:{}", self.created_at, self.key)
    }
}

impl Cursor for IncidentRow {
    fn cursor(&self) -> String {
        format!("{:020}:{}", self.created_at, self.key)
    }
}

impl Cursor for TimerRow {
    /// Timers list in due order.
    fn cursor(&self) -> String {
        format!(
            "{:020}:{}.{}",
            self.due_at, self.instance_id, self.local_key
        )
    }
}

impl Cursor for SubscriptionRow {
    fn cursor(&self) -> String {
        format!(
            "{:020}:{}.{}",
            self.opened_at, self.instance_id, self.local_key
        )
    }
}

impl Cursor for MessageRow {
    /// Messages list in publication order.
    fn cursor(&self) -> String {
        format!("{:020}:{:020}", self.published_at, self.seq)
    }
}

impl Cursor for HistoryRow {
    fn cursor(&self) -> String {
        format!("{:020}", self.seq)
    }
}

/// A `time:key` cursor, split; anything else is [`crate::Error::bad_cursor`].
pub fn split_cursor(cursor: &str) -> crate::Result<(i64, &str)> {
    let (time, key) = cursor
        .split_once(':')
        .ok_or_else(|| crate::Error::bad_cursor(cursor))?;
    let time: i128 = time.parse().map_err(|_| crate::Error::bad_cursor(cursor))?;
    // A time past any row's is still a place in the list: after it comes nothing.
    let time = i64::try_from(time).unwrap_or(if time < 0 { i64::MIN } else { i64::MAX });
    Ok((time, key))
}

/// A history cursor (a sequence number).
pub fn sequence_cursor(cursor: Option<&str>) -> crate::Result<u64> {
    let Some(cursor) = cursor else { return Ok(0) };
    if !cursor.is_empty() && cursor.bytes().all(|b| b.is_ascii_digit()) {
        // Digits past any sequence number: after them comes nothing.
        return Ok(cursor.parse().unwrap_or(u64::MAX));
    }
    Err(crate::Error::bad_cursor(cursor))
}

/// Cuts an ordered list into a page after `page.after`.
pub fn paginate<T: Cursor>(mut sorted: Vec<T>, page: &PageRequest) -> crate::Result<Page<T>> {
    if let Some(after) = &page.after {
        split_cursor(after)?;
        sorted.retain(|row| row.cursor().as_str() > after.as_str());
    }
    let limit = page.bounded_limit();
    let next = (sorted.len() > limit).then(|| sorted[limit - 1].cursor());
    sorted.truncate(limit);
    Ok(Page {
        items: sorted,
        next,
    })
}

/// How an instance's variables changed, for a store's index of them
/// ([`Write::IndexVariables`]).
#[derive(Debug, Clone, PartialEq)]
pub enum VariableChanges {
    /// The entries that changed, as the writer knows what the index holds.
    Known(VariableEntries),
    /// The instance's variables now, where the writer does not know what
    /// the index holds: the store reads that from the stored row.
    Whole(Variables),
}

/// Entries of a variables index to drop (each variable's name and the value
/// the index has for it) and to add.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariableEntries {
    pub dropped: Vec<(String, serde_json::Value)>,
    pub added: Vec<(String, serde_json::Value)>,
}

impl VariableEntries {
    /// Brings `indexed` (what the index holds) to `variables` in place and
    /// says what changed. Only the variables that differ are copied, so a
    /// step that sets one variable of many costs one entry, not a copy of
    /// them all.
    pub fn bring(indexed: &mut Variables, variables: &Variables) -> VariableEntries {
        let mut entries = VariableEntries::default();
        indexed.retain(|name, value| {
            let holds = variables.get(name) == Some(value);
            if !holds {
                entries.dropped.push((name.clone(), std::mem::take(value)));
            }
            holds
        });
        for (name, value) in variables {
            if !indexed.contains_key(name) {
                indexed.insert(name.clone(), value.clone());
                entries.added.push((name.clone(), value.clone()));
            }
        }
        entries
    }

    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty() && self.added.is_empty()
    }
}
