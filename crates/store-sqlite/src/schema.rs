//! The tables and their indexes, one per query the runtime and the API make.

use rusqlite::{Connection, OptionalExtension};
use store::{Error, Result};

use crate::sql_error;

/// Bump when the tables change, and add the step to [`migrate`].
pub const SCHEMA_VERSION: i64 = 30;

const V1: &str = "
CREATE TABLE workflows (
    process_id TEXT NOT NULL, version INTEGER NOT NULL, deployment INTEGER NOT NULL,
    name TEXT, version_tag TEXT, xml TEXT NOT NULL, deployed_at INTEGER NOT NULL,
    PRIMARY KEY (process_id, version)
);
CREATE TABLE instances (
    id TEXT PRIMARY KEY, process_id TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
    business_key TEXT, parent_id TEXT, started_at INTEGER NOT NULL, ended_at INTEGER,
    incidents INTEGER NOT NULL, waiting TEXT NOT NULL, start_key TEXT,
    update_count INTEGER NOT NULL, history_count INTEGER NOT NULL, state TEXT NOT NULL
);
CREATE INDEX instances_by_start ON instances (started_at, id);
CREATE INDEX instances_by_status ON instances (status, started_at, id);
CREATE INDEX instances_by_process ON instances (process_id, started_at, id);
CREATE INDEX instances_by_business_key ON instances (business_key) WHERE business_key IS NOT NULL;
CREATE INDEX instances_by_parent ON instances (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX instances_by_start_key ON instances (process_id, start_key) WHERE start_key IS NOT NULL;
CREATE TABLE requests (request_id TEXT PRIMARY KEY, instance_id TEXT NOT NULL);
CREATE TABLE jobs (
    key TEXT PRIMARY KEY, instance_id TEXT NOT NULL, local_key INTEGER NOT NULL, process_id TEXT NOT NULL,
    element_id TEXT NOT NULL, job_type TEXT NOT NULL, retries INTEGER NOT NULL, state TEXT NOT NULL,
    not_before INTEGER, error_message TEXT, worker TEXT, lease_until INTEGER, created_at INTEGER NOT NULL
);
CREATE INDEX jobs_by_type ON jobs (job_type, state, created_at, key);
CREATE INDEX jobs_by_created ON jobs (created_at, key);
CREATE INDEX jobs_by_instance ON jobs (instance_id);
CREATE TABLE timers (
    instance_id TEXT NOT NULL, local_key INTEGER NOT NULL, element_id TEXT NOT NULL, due_at INTEGER NOT NULL,
    PRIMARY KEY (instance_id, local_key)
) WITHOUT ROWID;
CREATE INDEX timers_by_due ON timers (due_at, instance_id, local_key);
CREATE TABLE subscriptions (
    instance_id TEXT NOT NULL, local_key INTEGER NOT NULL, element_id TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, correlation_key TEXT NOT NULL, opened_at INTEGER NOT NULL,
    PRIMARY KEY (instance_id, local_key)
) WITHOUT ROWID;
CREATE INDEX subscriptions_by_name ON subscriptions (kind, name, correlation_key, opened_at);
CREATE TABLE tasks (
    key TEXT PRIMARY KEY, instance_id TEXT NOT NULL, local_key INTEGER NOT NULL, process_id TEXT NOT NULL,
    element_id TEXT NOT NULL, assignee TEXT, candidate_groups TEXT NOT NULL, candidate_users TEXT NOT NULL,
    due TEXT, follow_up TEXT, priority INTEGER, form_key TEXT, created_at INTEGER NOT NULL
);
CREATE INDEX tasks_by_created ON tasks (created_at, key);
CREATE TABLE incidents (
    key TEXT PRIMARY KEY, instance_id TEXT NOT NULL, local_key INTEGER NOT NULL, process_id TEXT NOT NULL,
    element_id TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE INDEX incidents_by_created ON incidents (created_at, key);
CREATE TABLE history (
    instance_id TEXT NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY, name TEXT NOT NULL, correlation_key TEXT NOT NULL, variables TEXT NOT NULL,
    published_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, message_id TEXT, correlated TEXT NOT NULL
);
CREATE INDEX messages_by_name ON messages (name, correlation_key, expires_at);
CREATE INDEX messages_by_id ON messages (message_id) WHERE message_id IS NOT NULL;
CREATE TABLE start_timers (
    process_id TEXT NOT NULL, element_id TEXT NOT NULL, version INTEGER NOT NULL, due_at INTEGER NOT NULL,
    repeat TEXT, PRIMARY KEY (process_id, element_id)
) WITHOUT ROWID;
";

/// Version 2: incidents by instance, for an instance's incidents and those
/// of the instances it called (a key range: see `store::descendant_range`).
const V2: &str = "
CREATE INDEX incidents_by_instance ON incidents (instance_id);
";

/// Version 3: instance labels, by name and value.
const V3: &str = "
CREATE TABLE labels (
    name TEXT NOT NULL, value TEXT NOT NULL, instance_id TEXT NOT NULL,
    PRIMARY KEY (name, value, instance_id)
) WITHOUT ROWID;
CREATE INDEX labels_by_instance ON labels (instance_id);
";

/// Version 4: subscriptions and messages listed in the order they came.
const V4: &str = "
CREATE INDEX subscriptions_by_opened ON subscriptions (opened_at);
CREATE INDEX messages_by_published ON messages (published_at, seq);
";

/// Version 5: resolved incidents are kept, marked with when and by whom.
const V5: &str = "
ALTER TABLE incidents ADD COLUMN resolved_at INTEGER;
ALTER TABLE incidents ADD COLUMN resolved_by TEXT;
";

/// Version 6: API tokens (the hash of each, never the secret).
const V6: &str = "
CREATE TABLE tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, roles TEXT NOT NULL,
    job_types TEXT, workflows TEXT, groups TEXT NOT NULL, hide_variables INTEGER NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER
);
";

/// Version 7: the token of a job's lease.
const V7: &str = "
ALTER TABLE jobs ADD COLUMN lease TEXT;
";

/// Creates the tables of a new file, brings an older file up to date; refuses a file written by a newer Baton.
// Tenants: everything belongs to one. Tables whose key gains the tenant are
// rebuilt (SQLite cannot change a primary key); the others get a column, and
// the indexes that find messages, subscriptions and message-started
// instances lead with it. Rows from before are the default tenant's.
const V8: &str = "
CREATE TABLE workflows_v8 (
    tenant TEXT NOT NULL, process_id TEXT NOT NULL, version INTEGER NOT NULL, deployment INTEGER NOT NULL,
    name TEXT, version_tag TEXT, xml TEXT NOT NULL, deployed_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, process_id, version)
);
INSERT INTO workflows_v8 SELECT 'default', process_id, version, deployment, name, version_tag, xml, deployed_at FROM workflows;
DROP TABLE workflows;
ALTER TABLE workflows_v8 RENAME TO workflows;
CREATE TABLE requests_v8 (tenant TEXT NOT NULL, request_id TEXT NOT NULL, instance_id TEXT NOT NULL, PRIMARY KEY (tenant, request_id)) WITHOUT ROWID;
INSERT INTO requests_v8 SELECT 'default', request_id, instance_id FROM requests;
DROP TABLE requests;
ALTER TABLE requests_v8 RENAME TO requests;
CREATE TABLE start_timers_v8 (
    tenant TEXT NOT NULL, process_id TEXT NOT NULL, element_id TEXT NOT NULL, version INTEGER NOT NULL, due_at INTEGER NOT NULL,
    repeat TEXT, PRIMARY KEY (tenant, process_id, element_id)
) WITHOUT ROWID;
INSERT INTO start_timers_v8 SELECT 'default', process_id, element_id, version, due_at, repeat FROM start_timers;
DROP TABLE start_timers;
ALTER TABLE start_timers_v8 RENAME TO start_timers;
CREATE INDEX start_timers_by_due ON start_timers (due_at);
ALTER TABLE instances ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX instances_by_tenant ON instances (tenant, started_at, id);
DROP INDEX instances_by_start_key;
CREATE INDEX instances_by_start_key ON instances (tenant, process_id, start_key) WHERE start_key IS NOT NULL;
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE timers ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE tasks ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE incidents ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE subscriptions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
DROP INDEX subscriptions_by_name;
CREATE INDEX subscriptions_by_name ON subscriptions (tenant, kind, name, correlation_key, opened_at);
ALTER TABLE messages ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
DROP INDEX messages_by_name;
CREATE INDEX messages_by_name ON messages (tenant, name, correlation_key, expires_at);
DROP INDEX messages_by_id;
CREATE INDEX messages_by_id ON messages (tenant, message_id) WHERE message_id IS NOT NULL;
ALTER TABLE tokens ADD COLUMN tenants TEXT NOT NULL DEFAULT '[\"default\"]';
";

/// Version 9: completed user tasks stay (open ones are listed through a
/// partial index, so they cost nothing); forms deployed beside BPMN.
const V9: &str = "
ALTER TABLE tasks ADD COLUMN completed_at INTEGER;
ALTER TABLE tasks ADD COLUMN completed_by TEXT;
DROP INDEX tasks_by_created;
CREATE INDEX tasks_open ON tasks (created_at, key) WHERE completed_at IS NULL;
CREATE INDEX tasks_completed ON tasks (created_at, key) WHERE completed_at IS NOT NULL;
CREATE TABLE forms (
    tenant TEXT NOT NULL, form_id TEXT NOT NULL, version INTEGER NOT NULL, deployment INTEGER NOT NULL,
    version_tag TEXT, resource TEXT NOT NULL, schema TEXT NOT NULL, deployed_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, form_id, version)
);
";

/// Version 10: instance counts by workflow version, status and own open
/// incidents, kept by triggers in the transaction that writes the instance
/// (instances are written with an upsert, so a change is one UPDATE), so the
/// console, the API and /metrics count without reading instances.
const V10: &str = "
CREATE TABLE instance_counts (
    tenant TEXT NOT NULL, process_id TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
    with_incidents INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (tenant, process_id, version, status, with_incidents)
) WITHOUT ROWID;
INSERT INTO instance_counts
    SELECT tenant, process_id, version, status, incidents > 0, COUNT(*) FROM instances GROUP BY 1, 2, 3, 4, 5;
CREATE TRIGGER instances_counted AFTER INSERT ON instances BEGIN
    INSERT INTO instance_counts VALUES (NEW.tenant, NEW.process_id, NEW.version, NEW.status, NEW.incidents > 0, 1)
        ON CONFLICT DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER instances_recounted AFTER UPDATE OF tenant, process_id, version, status, incidents ON instances
WHEN OLD.tenant IS NOT NEW.tenant OR OLD.process_id IS NOT NEW.process_id OR OLD.version IS NOT NEW.version
    OR OLD.status IS NOT NEW.status OR (OLD.incidents > 0) IS NOT (NEW.incidents > 0)
BEGIN
    UPDATE instance_counts SET count = count - 1
        WHERE tenant = OLD.tenant AND process_id = OLD.process_id AND version = OLD.version AND status = OLD.status
        AND with_incidents = (OLD.incidents > 0);
    DELETE FROM instance_counts
        WHERE tenant = OLD.tenant AND process_id = OLD.process_id AND version = OLD.version AND status = OLD.status
        AND with_incidents = (OLD.incidents > 0) AND count <= 0;
    INSERT INTO instance_counts VALUES (NEW.tenant, NEW.process_id, NEW.version, NEW.status, NEW.incidents > 0, 1)
        ON CONFLICT DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER instances_uncounted AFTER DELETE ON instances BEGIN
    UPDATE instance_counts SET count = count - 1
        WHERE tenant = OLD.tenant AND process_id = OLD.process_id AND version = OLD.version AND status = OLD.status
        AND with_incidents = (OLD.incidents > 0);
    DELETE FROM instance_counts
        WHERE tenant = OLD.tenant AND process_id = OLD.process_id AND version = OLD.version AND status = OLD.status
        AND with_incidents = (OLD.incidents > 0) AND count <= 0;
END;
";

/// Version 11: DMN decisions, each version with the file it is in.
const V11: &str = "
CREATE TABLE decisions (
    tenant TEXT NOT NULL, decision_id TEXT NOT NULL, version INTEGER NOT NULL, deployment INTEGER NOT NULL,
    name TEXT NOT NULL, definitions_id TEXT NOT NULL, resource TEXT NOT NULL, xml TEXT NOT NULL, deployed_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, decision_id, version)
);
";

/// Instance numbers (what Camunda-style keys are made of): existing instances
/// take their rowid, which SQLite gave in insertion order.
const V12: &str = "
ALTER TABLE instances ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
UPDATE instances SET number = rowid;
CREATE UNIQUE INDEX instances_by_number ON instances (number) WHERE number > 0;
";

/// Version 13: retention. When each ended instance may be deleted, in the
/// order the sweep takes them; and the lookups by instance that deleting one
/// needs (its tasks, its request ids).
const V13: &str = "
CREATE TABLE deletions (instance_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX deletions_by_time ON deletions (at, instance_id);
CREATE INDEX tasks_by_instance ON tasks (instance_id);
CREATE INDEX requests_by_instance ON requests (instance_id);
";

/// Version 14: instances found by variable through an index, not by reading
/// every instance's state (issue 16): each instance's own variables, one row
/// each ([`crate::variables::variable_entry`]), filled from the states already written by
/// [`index_stored_variables`]. One B-tree, in the order the filter reads it:
/// an entry is found again for changing or deleting it from the variable's
/// value in the instance's stored state, so no second index by instance is
/// kept up (it doubled what each entry cost to write).
const V14: &str = "
CREATE TABLE variables (
    name TEXT NOT NULL, kind TEXT NOT NULL, value, instance_id TEXT NOT NULL,
    PRIMARY KEY (name, kind, value, instance_id)
) WITHOUT ROWID;
";

/// Fills the `variables` index from every stored instance's state (step 14).
fn index_stored_variables(connection: &Connection) -> Result<()> {
    let mut select = connection.prepare("SELECT id, json_extract(state, '$.variables') FROM instances").map_err(sql_error)?;
    let mut rows = select.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let id: String = row.get(0).map_err(sql_error)?;
        let text: Option<String> = row.get(1).map_err(sql_error)?;
        let variables: serde_json::Map<String, serde_json::Value> = match text {
            Some(text) => serde_json::from_str(&text).map_err(|e| Error::corrupt(format!("instance {id}: its variables do not read: {e}")))?,
            None => continue,
        };
        for (name, value) in &variables {
            crate::variables::add_entry(connection, &id, name, value)?;
        }
    }
    Ok(())
}

/// Version 15: instance states and history entries are written in the
/// compact form (MessagePack BLOBs, `store::compact`) instead of JSON text.
/// Rows written before keep their JSON until they are next written; both
/// forms read. Nothing changes in the tables: the version only stops an
/// older Baton, which reads JSON alone, from opening the file.
const V15: &str = "";

/// Version 16: `instance_counts` is kept by the store's write transaction,
/// which writes a batch's moves once at its commit, not by triggers (two
/// statements per instance written, and a statement journal for each insert).
const V16: &str = "
DROP TRIGGER instances_counted;
DROP TRIGGER instances_recounted;
DROP TRIGGER instances_uncounted;
";

/// Version 17: a history row holds several entries of one instance (what
/// a transaction appended to it: `crate::history`), keyed by the seq of its
/// last; `entries` says how many. Rows from before hold one entry each and
/// keep it (`entries` NULL): both forms read.
const V17: &str = "
ALTER TABLE history ADD COLUMN entries INTEGER;
";

/// Version 18: a job's row is found by its key alone (issue 16). The table is
/// its key's B-tree (WITHOUT ROWID), so a job written or deleted changes
/// three B-trees, not five: there is no rowid table beside the key's index,
/// and no index by instance, since a job's key is its instance's id, a dot
/// and its number in the instance ([`store::item_key`]), so an instance's
/// jobs are a range of keys ([`store::item_keys_of`]).
/// [`check_job_keys`] refuses a file whose keys are not all of that form.
const V18: &str = "
CREATE TABLE jobs_by_key (
    key TEXT PRIMARY KEY, instance_id TEXT NOT NULL, local_key INTEGER NOT NULL, process_id TEXT NOT NULL,
    element_id TEXT NOT NULL, job_type TEXT NOT NULL, retries INTEGER NOT NULL, state TEXT NOT NULL,
    not_before INTEGER, error_message TEXT, worker TEXT, lease_until INTEGER, created_at INTEGER NOT NULL,
    lease TEXT, tenant TEXT NOT NULL DEFAULT 'default'
) WITHOUT ROWID;
INSERT INTO jobs_by_key (key, instance_id, local_key, process_id, element_id, job_type, retries, state, not_before,
        error_message, worker, lease_until, created_at, lease, tenant)
    SELECT key, instance_id, local_key, process_id, element_id, job_type, retries, state, not_before,
        error_message, worker, lease_until, created_at, lease, tenant FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_by_key RENAME TO jobs;
CREATE INDEX jobs_by_type ON jobs (job_type, state, created_at, key);
CREATE INDEX jobs_by_created ON jobs (created_at, key);
";

/// Version 19: the polls read only what may be taken or fired now.
/// Activation walked a type's jobs in creation order through every leased
/// or backed-off one before the first free one: a million steps of
/// SQLite's machine for a worker's call with 100 000 jobs taken. A job
/// never leased nor backed off has `free_at` 0, so the jobs free now are
/// one ordered range of `jobs_free`, and those whose lease ran out or whose
/// backoff passed another, taken in the order they came free (as the
/// PostgreSQL store's version 2). And the next due time, read after every
/// turn that wrote, and the due timers walked the timers of suspended
/// instances (600 000 steps with 100 000 of them): a suspended instance's
/// timers and jobs are `held` (`Write::HoldWaits`), and the indexes the
/// polls read leave them out.
const V19: &str = "
ALTER TABLE jobs ADD COLUMN free_at INTEGER GENERATED ALWAYS AS (max(coalesce(not_before, 0), coalesce(lease_until, 0))) VIRTUAL;
ALTER TABLE jobs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE timers ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET held = 1 WHERE instance_id IN (SELECT id FROM instances WHERE status = 'suspended');
UPDATE timers SET held = 1 WHERE instance_id IN (SELECT id FROM instances WHERE status = 'suspended');
CREATE INDEX jobs_free ON jobs (job_type, free_at, created_at, key) WHERE state = 'activatable' AND held = 0;
CREATE INDEX timers_due ON timers (due_at, instance_id, local_key) WHERE held = 0;
";

/// Version 20: a worker's poll reads its own tenants' free jobs. The
/// tenants were a filter on `jobs_free` (by type, then when free): a worker
/// of one tenant walked every free job of the same type that other tenants
/// had waiting. With the tenant after the type, each tenant's free jobs are
/// ranges of their own, and a worker of every tenant finds the tenants that
/// have some by one seek each.
const V20: &str = "
DROP INDEX jobs_free;
CREATE INDEX jobs_free ON jobs (job_type, tenant, free_at, created_at, key) WHERE state = 'activatable' AND held = 0;
";

/// Version 21: buffered messages in the order they expire, so that
/// retention deletes those whose time to live and retention both ran out
/// a few at a time without reading the others.
const V21: &str = "
CREATE INDEX messages_by_expiry ON messages (expires_at, seq);
";

/// Version 22: a tasklist's open tasks by assignee and by tenant, in list
/// order: "assigned to me" and one tenant's tasks walked every open task
/// until a page of theirs was found.
const V22: &str = "
CREATE INDEX tasks_open_by_assignee ON tasks (assignee, created_at, key) WHERE completed_at IS NULL AND assignee IS NOT NULL;
CREATE INDEX tasks_open_by_tenant ON tasks (tenant, created_at, key) WHERE completed_at IS NULL;
";

/// Version 23: the lists of jobs, incidents, timers, subscriptions and
/// messages read each tenant's rows as a range of an index in list order.
/// Their indexes led with the time, so a list of one tenant walked every
/// other tenant's rows before it, a list of one job type read the type's
/// jobs whole and sorted them (the index put the state before the time),
/// and the open incidents walked the resolved ones. The same indexes now
/// lead with the tenant (and no more of them: a list of every tenant merges
/// each one's page), one type's jobs are (type, tenant, time), and open
/// incidents have a partial index of their own.
const V23: &str = "
DROP INDEX jobs_by_created;
DROP INDEX jobs_by_type;
CREATE INDEX jobs_by_tenant ON jobs (tenant, created_at, key);
CREATE INDEX jobs_by_type ON jobs (job_type, tenant, created_at, key);
DROP INDEX incidents_by_created;
CREATE INDEX incidents_by_tenant ON incidents (tenant, created_at, key);
CREATE INDEX incidents_open ON incidents (tenant, created_at, key) WHERE resolved_at IS NULL;
DROP INDEX timers_by_due;
CREATE INDEX timers_by_tenant ON timers (tenant, due_at, instance_id, local_key);
DROP INDEX subscriptions_by_opened;
CREATE INDEX subscriptions_by_tenant ON subscriptions (tenant, opened_at, instance_id, local_key);
DROP INDEX messages_by_published;
CREATE INDEX messages_by_tenant ON messages (tenant, published_at, seq);
";

/// Version 24: an open task's candidate groups, a row each, so that a
/// group's tasklist ("tasks my group may claim") reads that group's open
/// tasks in list order, where it tested the JSON list of every open task.
/// Kept up by the store's writes of tasks (none once a task is completed).
const V24: &str = "
CREATE TABLE task_candidates (
    task_key TEXT NOT NULL, grp TEXT NOT NULL, task_created_at INTEGER NOT NULL,
    PRIMARY KEY (task_key, grp)
) WITHOUT ROWID;
CREATE INDEX task_candidates_by_group ON task_candidates (grp, task_created_at, task_key);
INSERT OR IGNORE INTO task_candidates (task_key, grp, task_created_at)
    SELECT tasks.key, groups.value, tasks.created_at FROM tasks, json_each(tasks.candidate_groups) AS groups
    WHERE tasks.completed_at IS NULL AND groups.type = 'text';
";

/// Version 25: the instances whose own incidents are open, and the open
/// incidents of called instances (ids with a `/`), for a list of the
/// instances with incidents, which starts from them rather than testing
/// every instance. An instance without incidents (nearly all, nearly
/// always) has no entry in either.
const V25: &str = "
CREATE INDEX instances_with_incidents ON instances (id) WHERE incidents > 0;
CREATE INDEX incidents_open_of_called ON incidents (instance_id) WHERE resolved_at IS NULL AND instr(instance_id, '/') > 0;
";

/// Version 26: failed jobs by tenant in list order, for a list of them,
/// which walked every other job of the tenant. A job that has not failed
/// (nearly every one) has no entry.
const V26: &str = "
CREATE INDEX jobs_failed ON jobs (tenant, created_at, key) WHERE state = 'failed';
";

/// Version 27: the instances by status and by workflow lead with the
/// tenant, so that one tenant's running instances, or its instances of a
/// workflow, are one range in start order (they walked every other
/// tenant's, or sorted the tenant's whole list); a list of several tenants
/// or of every one reads each tenant's range and merges them. No index is
/// added: these are the same two.
const V27: &str = "
DROP INDEX instances_by_status;
CREATE INDEX instances_by_status ON instances (tenant, status, started_at, id);
DROP INDEX instances_by_process;
CREATE INDEX instances_by_process ON instances (tenant, process_id, started_at, id);
";

/// Version 28: incidents and open tasks by workflow, for lists of one
/// workflow's, which walked every incident or open task of the tenant. An
/// incident's indexes lead with the process, as `jobs_by_type` does with
/// the type, so that each tenant's are a range of them; tasks are listed
/// without a merge by tenant, as by assignee. Incidents and tasks are
/// written far more rarely than instances and jobs.
const V28: &str = "
CREATE INDEX incidents_by_process ON incidents (process_id, tenant, created_at, key);
CREATE INDEX incidents_open_by_process ON incidents (process_id, tenant, created_at, key) WHERE resolved_at IS NULL;
CREATE INDEX tasks_open_by_process ON tasks (process_id, created_at, key) WHERE completed_at IS NULL;
";

/// Version 29: completed tasks by who completed them, by assignee and by
/// tenant, for a tasklist's completed ones (a list of them walked every
/// completed task, which only retention ends). Written once, as a task
/// completes.
const V29: &str = "
CREATE INDEX tasks_completed_by ON tasks (completed_by, created_at, key) WHERE completed_at IS NOT NULL AND completed_by IS NOT NULL;
CREATE INDEX tasks_completed_by_assignee ON tasks (assignee, created_at, key) WHERE completed_at IS NOT NULL AND assignee IS NOT NULL;
CREATE INDEX tasks_completed_by_tenant ON tasks (tenant, created_at, key) WHERE completed_at IS NOT NULL;
";

/// Version 30: a task keeps its candidate groups' rows when it completes,
/// marked `completed`, so that a group's completed tasks (and all of them)
/// are read in list order too, where they tested every completed task's
/// list of groups: `task_candidates_by_state` for open or completed,
/// `task_candidates_by_group` for both. Written as a task is created and
/// completed, at the speed people work.
const V30: &str = "
ALTER TABLE task_candidates ADD COLUMN completed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX task_candidates_by_state ON task_candidates (grp, completed, task_created_at, task_key);
INSERT OR IGNORE INTO task_candidates (task_key, grp, task_created_at, completed)
    SELECT tasks.key, groups.value, tasks.created_at, 1 FROM tasks, json_each(tasks.candidate_groups) AS groups
    WHERE tasks.completed_at IS NOT NULL AND groups.type = 'text';
";

/// Step 18 finds an instance's jobs by their keys' prefix: every stored key
/// must be the instance's id, a dot and the job's number.
fn check_job_keys(connection: &Connection) -> Result<()> {
    let odd: Option<String> = connection
        .query_row("SELECT key FROM jobs WHERE key IS NOT instance_id || '.' || local_key LIMIT 1", [], |row| row.get(0))
        .optional()
        .map_err(sql_error)?;
    match odd {
        Some(key) => Err(Error::corrupt(format!("job {key}: its key is not its instance's id, a dot and its number"))),
        None => Ok(()),
    }
}

const STEPS: [(i64, &str); 30] = [
    (1, V1),
    (2, V2),
    (3, V3),
    (4, V4),
    (5, V5),
    (6, V6),
    (7, V7),
    (8, V8),
    (9, V9),
    (10, V10),
    (11, V11),
    (12, V12),
    (13, V13),
    (14, V14),
    (15, V15),
    (16, V16),
    (17, V17),
    (18, V18),
    (19, V19),
    (20, V20),
    (21, V21),
    (22, V22),
    (23, V23),
    (24, V24),
    (25, V25),
    (26, V26),
    (27, V27),
    (28, V28),
    (29, V29),
    (30, V30),
];

/// Brings a file at schema `from` (not yet migrated: 0) up to `to`. For
/// tests that make a file as an older Baton left it.
#[doc(hidden)]
pub fn migrate_steps(connection: &Connection, from: i64, to: i64) -> Result<()> {
    for (step, sql) in STEPS {
        if from < step && step <= to {
            connection.execute_batch(&format!("BEGIN IMMEDIATE; {sql}")).map_err(sql_error)?;
            // Steps that need more than SQL, in the same transaction.
            let filled = match step {
                14 => index_stored_variables(connection),
                18 => check_job_keys(connection),
                _ => Ok(()),
            };
            if let Err(error) = filled {
                let _ = connection.execute_batch("ROLLBACK");
                return Err(error);
            }
            connection.execute_batch(&format!("PRAGMA user_version = {step}; COMMIT;")).map_err(sql_error)?;
        }
    }
    Ok(())
}

pub fn migrate(connection: &Connection) -> Result<()> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql_error)?;
    if version > SCHEMA_VERSION {
        return Err(Error::corrupt(format!(
            "the database has schema version {version}; this Baton reads up to {SCHEMA_VERSION}: upgrade Baton"
        )));
    }
    migrate_steps(connection, version, SCHEMA_VERSION)
}
