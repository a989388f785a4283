//! The tables and their indexes, one per query the runtime and the API make,
//! and the steps that bring a database up to date.

use store::{Error, Result};

use crate::Connection;

/// Bump when the tables change, and add the step to [`STEPS`].
pub const SCHEMA_VERSION: i64 = 16;

/// Taken for the length of a migration, so that nodes starting together
/// migrate one after the other (the later ones find nothing left to do).
const MIGRATION_LOCK: i64 = 0x6261_746f_6e00; // "baton\0"

/// The whole schema of the first release on PostgreSQL: the SQLite store's
/// twelve steps, folded into one.
const V1: &str = r#"
CREATE TABLE workflows (
    tenant TEXT COLLATE "C" NOT NULL, process_id TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
    deployment BIGINT NOT NULL, name TEXT, version_tag TEXT, xml TEXT NOT NULL, deployed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, process_id, version)
);
CREATE TABLE instances (
    id TEXT COLLATE "C" PRIMARY KEY, number BIGINT NOT NULL, tenant TEXT COLLATE "C" NOT NULL,
    process_id TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL, status TEXT COLLATE "C" NOT NULL,
    business_key TEXT COLLATE "C", parent_id TEXT COLLATE "C", started_at BIGINT NOT NULL, ended_at BIGINT,
    incidents BIGINT NOT NULL, waiting JSONB NOT NULL, start_key TEXT COLLATE "C",
    update_count BIGINT NOT NULL, history_count BIGINT NOT NULL, state JSON NOT NULL,
    variables JSONB NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX instances_by_start ON instances (started_at, id);
CREATE INDEX instances_by_status ON instances (status, started_at, id);
CREATE INDEX instances_by_process ON instances (process_id, started_at, id);
CREATE INDEX instances_by_tenant ON instances (tenant, started_at, id);
CREATE INDEX instances_by_business_key ON instances (business_key) WHERE business_key IS NOT NULL;
CREATE INDEX instances_by_parent ON instances (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX instances_by_start_key ON instances (tenant, process_id, start_key) WHERE start_key IS NOT NULL;
CREATE UNIQUE INDEX instances_by_number ON instances (number) WHERE number > 0;
-- Instances by a variable's value (`variable=name:value`): containment finds
-- the candidates through the index, equality then checks each exactly. The
-- instance's own variables are a column of their own (beside the state that
-- holds them too), so that a step that leaves them as they were leaves the
-- index alone (a heap-only update, for which each page keeps a fifth free).
CREATE INDEX instances_by_variables ON instances USING gin (variables jsonb_path_ops);
CREATE TABLE requests (
    tenant TEXT COLLATE "C" NOT NULL, request_id TEXT COLLATE "C" NOT NULL, instance_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, request_id)
);
CREATE TABLE jobs (
    key TEXT COLLATE "C" PRIMARY KEY, instance_id TEXT COLLATE "C" NOT NULL, local_key BIGINT NOT NULL,
    process_id TEXT COLLATE "C" NOT NULL, element_id TEXT COLLATE "C" NOT NULL, job_type TEXT COLLATE "C" NOT NULL,
    retries BIGINT NOT NULL, state TEXT COLLATE "C" NOT NULL, not_before BIGINT, error_message TEXT,
    worker TEXT, lease_until BIGINT, created_at BIGINT NOT NULL, lease TEXT, tenant TEXT COLLATE "C" NOT NULL
);
CREATE INDEX jobs_by_type ON jobs (job_type, state, created_at, key);
CREATE INDEX jobs_by_created ON jobs (created_at, key);
CREATE INDEX jobs_by_instance ON jobs (instance_id);
CREATE TABLE timers (
    instance_id TEXT COLLATE "C" NOT NULL, local_key BIGINT NOT NULL, element_id TEXT COLLATE "C" NOT NULL,
    due_at BIGINT NOT NULL, tenant TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (instance_id, local_key)
);
CREATE INDEX timers_by_due ON timers (due_at, instance_id, local_key);
CREATE TABLE subscriptions (
    instance_id TEXT COLLATE "C" NOT NULL, local_key BIGINT NOT NULL, element_id TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, correlation_key TEXT COLLATE "C" NOT NULL,
    opened_at BIGINT NOT NULL, tenant TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (instance_id, local_key)
);
CREATE INDEX subscriptions_by_name ON subscriptions (tenant, kind, name, correlation_key, opened_at);
CREATE INDEX subscriptions_by_opened ON subscriptions (opened_at);
CREATE TABLE tasks (
    key TEXT COLLATE "C" PRIMARY KEY, instance_id TEXT COLLATE "C" NOT NULL, local_key BIGINT NOT NULL,
    process_id TEXT COLLATE "C" NOT NULL, element_id TEXT COLLATE "C" NOT NULL, assignee TEXT COLLATE "C",
    candidate_groups JSONB NOT NULL, candidate_users JSONB NOT NULL, due TEXT, follow_up TEXT, priority BIGINT,
    form_key TEXT, created_at BIGINT NOT NULL, tenant TEXT COLLATE "C" NOT NULL, completed_at BIGINT,
    completed_by TEXT COLLATE "C"
);
CREATE INDEX tasks_open ON tasks (created_at, key) WHERE completed_at IS NULL;
CREATE INDEX tasks_completed ON tasks (created_at, key) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_by_instance ON tasks (instance_id);
CREATE TABLE incidents (
    key TEXT COLLATE "C" PRIMARY KEY, instance_id TEXT COLLATE "C" NOT NULL, local_key BIGINT NOT NULL,
    process_id TEXT COLLATE "C" NOT NULL, element_id TEXT COLLATE "C" NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, created_at BIGINT NOT NULL, resolved_at BIGINT, resolved_by TEXT,
    tenant TEXT COLLATE "C" NOT NULL
);
CREATE INDEX incidents_by_created ON incidents (created_at, key);
CREATE INDEX incidents_by_instance ON incidents (instance_id);
CREATE TABLE history (
    instance_id TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, entry JSON NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TABLE messages (
    seq BIGINT PRIMARY KEY, name TEXT COLLATE "C" NOT NULL, correlation_key TEXT COLLATE "C" NOT NULL,
    variables JSON NOT NULL, published_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
    message_id TEXT COLLATE "C", correlated JSONB NOT NULL, tenant TEXT COLLATE "C" NOT NULL
);
CREATE INDEX messages_by_name ON messages (tenant, name, correlation_key, expires_at);
CREATE INDEX messages_by_id ON messages (tenant, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX messages_by_published ON messages (published_at, seq);
CREATE TABLE start_timers (
    tenant TEXT COLLATE "C" NOT NULL, process_id TEXT COLLATE "C" NOT NULL, element_id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL, due_at BIGINT NOT NULL, repeat JSON,
    PRIMARY KEY (tenant, process_id, element_id)
);
CREATE INDEX start_timers_by_due ON start_timers (due_at);
CREATE TABLE labels (
    name TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, instance_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (name, value, instance_id)
);
CREATE INDEX labels_by_instance ON labels (instance_id);
CREATE TABLE tokens (
    id TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C" NOT NULL, hash TEXT NOT NULL UNIQUE, roles JSON NOT NULL,
    job_types JSON, workflows JSON, groups JSON NOT NULL, hide_variables BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT, tenants JSON NOT NULL
);
CREATE TABLE forms (
    tenant TEXT COLLATE "C" NOT NULL, form_id TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
    deployment BIGINT NOT NULL, version_tag TEXT, resource TEXT NOT NULL, schema TEXT NOT NULL,
    deployed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, form_id, version)
);
CREATE TABLE decisions (
    tenant TEXT COLLATE "C" NOT NULL, decision_id TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
    deployment BIGINT NOT NULL, name TEXT NOT NULL, definitions_id TEXT NOT NULL, resource TEXT NOT NULL,
    xml TEXT NOT NULL, deployed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, decision_id, version)
);
-- Instance counts by workflow version, status and own open incidents, kept
-- by a trigger in the transaction that writes the instance. Each count is
-- split into shards by the writing connection, so that nodes committing at
-- once do not queue on one row; a count is the sum of its shards.
CREATE TABLE instance_counts (
    tenant TEXT COLLATE "C" NOT NULL, process_id TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
    status TEXT COLLATE "C" NOT NULL, with_incidents BOOLEAN NOT NULL, shard SMALLINT NOT NULL, count BIGINT NOT NULL,
    PRIMARY KEY (tenant, process_id, version, status, with_incidents, shard)
);
CREATE FUNCTION baton_count_instance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    slot SMALLINT := pg_backend_pid() % 16;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO instance_counts AS c VALUES (OLD.tenant, OLD.process_id, OLD.version, OLD.status, OLD.incidents > 0, slot, -1)
            ON CONFLICT (tenant, process_id, version, status, with_incidents, shard) DO UPDATE SET count = c.count - 1;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO instance_counts AS c VALUES (NEW.tenant, NEW.process_id, NEW.version, NEW.status, NEW.incidents > 0, slot, 1)
            ON CONFLICT (tenant, process_id, version, status, with_incidents, shard) DO UPDATE SET count = c.count + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER instances_counted AFTER INSERT OR DELETE ON instances
    FOR EACH ROW EXECUTE FUNCTION baton_count_instance();
CREATE TRIGGER instances_recounted AFTER UPDATE OF tenant, process_id, version, status, incidents ON instances
    FOR EACH ROW WHEN (OLD.tenant IS DISTINCT FROM NEW.tenant OR OLD.process_id IS DISTINCT FROM NEW.process_id
        OR OLD.version IS DISTINCT FROM NEW.version OR OLD.status IS DISTINCT FROM NEW.status
        OR (OLD.incidents > 0) IS DISTINCT FROM (NEW.incidents > 0))
    EXECUTE FUNCTION baton_count_instance();
"#;

/// Version 2: jobs by when they are free. Activation walked a type's jobs in
/// creation order through every leased one before the first free one (33 ms
/// a call with a thousand jobs in flight); a job never leased nor backed off
/// has `free_at` 0, so the jobs free now are one ordered range of this index,
/// and those whose lease ran out or whose backoff passed another, short one.
const V2: &str = r#"
ALTER TABLE jobs ADD COLUMN free_at BIGINT GENERATED ALWAYS AS (GREATEST(COALESCE(not_before, 0), COALESCE(lease_until, 0))) STORED;
CREATE INDEX jobs_free ON jobs (job_type, free_at, created_at, key) WHERE state = 'activatable';
"#;

/// Version 3: several nodes on one database. Instance numbers come from a
/// sequence, in blocks of [`crate::NUMBER_BLOCK`] that a node hands out
/// alone (no two nodes read the highest number and give the same one next),
/// and the highest deployment key, which each node reads at every batch to
/// learn what others deployed, is the end of an index.
const V3: &str = r#"
CREATE SEQUENCE instance_numbers INCREMENT BY 64 MINVALUE 1;
SELECT setval('instance_numbers', COALESCE((SELECT max(number) FROM instances), 0) + 1, false);
CREATE INDEX workflows_by_deployment ON workflows (deployment);
CREATE INDEX decisions_by_deployment ON decisions (deployment);
CREATE INDEX forms_by_deployment ON forms (deployment);
"#;

/// Version 4: retention. When each ended instance may be deleted, in the
/// order the sweep takes them; and the request ids by instance, which
/// deleting one needs.
const V4: &str = r#"
CREATE TABLE deletions (instance_id TEXT COLLATE "C" PRIMARY KEY, at BIGINT NOT NULL);
CREATE INDEX deletions_by_time ON deletions (at, instance_id);
CREATE INDEX requests_by_instance ON requests (instance_id);
"#;

/// Version 5: a suspended instance's timers and jobs are `held`
/// (`Write::HoldWaits`), and the indexes the polls read leave them out:
/// the next due time, read after every batch that wrote, and the due timers
/// walked every suspended instance's timer before the first running one's,
/// and a worker's call every suspended instance's free job of its type.
const V5: &str = r#"
ALTER TABLE jobs ADD COLUMN held BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE timers ADD COLUMN held BOOLEAN NOT NULL DEFAULT false;
UPDATE jobs SET held = true WHERE instance_id IN (SELECT id FROM instances WHERE status = 'suspended');
UPDATE timers SET held = true WHERE instance_id IN (SELECT id FROM instances WHERE status = 'suspended');
DROP INDEX jobs_free;
CREATE INDEX jobs_free ON jobs (job_type, free_at, created_at, key) WHERE state = 'activatable' AND NOT held;
CREATE INDEX timers_due ON timers (due_at, instance_id, local_key) WHERE NOT held;
"#;

/// Version 6: a worker's call reads its own tenants' free jobs. The tenants
/// were a filter on `jobs_free` (by type, then when free): a worker of one
/// tenant walked every free job of the same type that other tenants had
/// waiting. With the tenant after the type, each tenant's free jobs are
/// ranges of their own.
const V6: &str = r#"
DROP INDEX jobs_free;
CREATE INDEX jobs_free ON jobs (job_type, tenant, free_at, created_at, key) WHERE state = 'activatable' AND NOT held;
"#;

/// Version 7: buffered messages in the order they expire, for retention.
const V7: &str = r#"
CREATE INDEX messages_by_expiry ON messages (expires_at, seq);
"#;

/// Version 8: a tasklist's open tasks by assignee and by tenant, in list
/// order (they walked every open task until a page of theirs was found).
const V8: &str = r#"
CREATE INDEX tasks_open_by_assignee ON tasks (assignee, created_at, key) WHERE completed_at IS NULL AND assignee IS NOT NULL;
CREATE INDEX tasks_open_by_tenant ON tasks (tenant, created_at, key) WHERE completed_at IS NULL;
"#;

/// Version 9: the lists of jobs, incidents, timers, subscriptions and
/// messages read each tenant's rows as a range of an index in list order,
/// as the SQLite store's version 23: the indexes they walked (led by the
/// time, or for one job type by the state) now lead with the tenant, and
/// open incidents have a partial index of their own.
const V9: &str = r#"
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
"#;

/// Version 10: an open task's candidate groups, a row each, so that a
/// group's tasklist reads that group's open tasks in list order (as the
/// SQLite store's version 24), where it tested every open task's list.
const V10: &str = r#"
CREATE TABLE task_candidates (
    task_key TEXT COLLATE "C" NOT NULL, grp TEXT COLLATE "C" NOT NULL, task_created_at BIGINT NOT NULL,
    PRIMARY KEY (task_key, grp)
);
CREATE INDEX task_candidates_by_group ON task_candidates (grp, task_created_at, task_key);
INSERT INTO task_candidates (task_key, grp, task_created_at)
    SELECT DISTINCT tasks.key, groups.value, tasks.created_at
    FROM tasks, jsonb_array_elements_text(CASE WHEN jsonb_typeof(tasks.candidate_groups) = 'array' THEN tasks.candidate_groups ELSE '[]'::jsonb END) AS groups(value)
    WHERE tasks.completed_at IS NULL;
"#;

/// Version 11: the instances whose own incidents are open, and the open
/// incidents of called instances, for a list of the instances with
/// incidents that starts from them (as the SQLite store's version 25).
const V11: &str = r#"
CREATE INDEX instances_with_incidents ON instances (id) WHERE incidents > 0;
CREATE INDEX incidents_open_of_called ON incidents (instance_id) WHERE resolved_at IS NULL AND strpos(instance_id, '/') > 0;
"#;

/// Version 12: failed jobs by tenant in list order (as the SQLite store's
/// version 26).
const V12: &str = r#"
CREATE INDEX jobs_failed ON jobs (tenant, created_at, key) WHERE state = 'failed';
"#;

/// Version 13: the instances by status and by workflow lead with the
/// tenant (as the SQLite store's version 27).
const V13: &str = r#"
DROP INDEX instances_by_status;
CREATE INDEX instances_by_status ON instances (tenant, status, started_at, id);
DROP INDEX instances_by_process;
CREATE INDEX instances_by_process ON instances (tenant, process_id, started_at, id);
"#;

/// Version 14: incidents and open tasks by workflow (as the SQLite
/// store's version 28).
const V14: &str = r#"
CREATE INDEX incidents_by_process ON incidents (process_id, tenant, created_at, key);
CREATE INDEX incidents_open_by_process ON incidents (process_id, tenant, created_at, key) WHERE resolved_at IS NULL;
CREATE INDEX tasks_open_by_process ON tasks (process_id, created_at, key) WHERE completed_at IS NULL;
"#;

/// Version 15: completed tasks by who completed them, by assignee and by
/// tenant (as the SQLite store's version 29).
const V15: &str = r#"
CREATE INDEX tasks_completed_by ON tasks (completed_by, created_at, key) WHERE completed_at IS NOT NULL AND completed_by IS NOT NULL;
CREATE INDEX tasks_completed_by_assignee ON tasks (assignee, created_at, key) WHERE completed_at IS NOT NULL AND assignee IS NOT NULL;
CREATE INDEX tasks_completed_by_tenant ON tasks (tenant, created_at, key) WHERE completed_at IS NOT NULL;
"#;

/// Version 16: a task keeps its candidate groups' rows when it completes,
/// marked `completed`, so that a group's completed tasks (and all of them)
/// are read in list order too (as the SQLite store's version 30).
const V16: &str = r#"
ALTER TABLE task_candidates ADD COLUMN completed BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX task_candidates_by_state ON task_candidates (grp, completed, task_created_at, task_key);
INSERT INTO task_candidates (task_key, grp, task_created_at, completed)
    SELECT DISTINCT tasks.key, groups.value, tasks.created_at, true
    FROM tasks, jsonb_array_elements_text(CASE WHEN jsonb_typeof(tasks.candidate_groups) = 'array' THEN tasks.candidate_groups ELSE '[]'::jsonb END) AS groups(value)
    WHERE tasks.completed_at IS NOT NULL;
"#;

const STEPS: [(i64, &str); 16] = [(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6), (7, V7), (8, V8), (9, V9), (10, V10), (11, V11), (12, V12), (13, V13), (14, V14), (15, V15), (16, V16)];

/// Creates the tables of a new database, brings an older one up to date, and
/// refuses one that a newer Baton wrote, all in one transaction (DDL is
/// transactional in PostgreSQL: a step that fails leaves the database as it was).
pub(crate) fn migrate(connection: &mut Connection) -> Result<()> {
    migrate_to(connection, SCHEMA_VERSION)
}

fn migrate_to(connection: &mut Connection, to: i64) -> Result<()> {
    connection.batch("BEGIN")?;
    let migrated = steps(connection, to);
    match migrated {
        Ok(()) => connection.batch("COMMIT"),
        Err(error) => {
            let _ = connection.batch("ROLLBACK");
            Err(error)
        }
    }
}

fn steps(connection: &mut Connection, to: i64) -> Result<()> {
    let client = connection.client();
    connection.wait(client.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]))?;
    connection.batch("CREATE TABLE IF NOT EXISTS baton_schema (version BIGINT NOT NULL)")?;
    let version: Option<i64> = connection
        .wait(client.query_opt("SELECT version FROM baton_schema", &[]))?
        .map(|row| row.get(0));
    let version = match version {
        Some(version) => version,
        None => {
            connection.batch("INSERT INTO baton_schema (version) VALUES (0)")?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(Error::corrupt(format!(
            "the database has schema version {version}; this Baton reads up to {SCHEMA_VERSION}: upgrade Baton"
        )));
    }
    for (step, sql) in STEPS {
        if version < step && step <= to {
            connection.batch(sql)?;
            connection.batch(&format!("UPDATE baton_schema SET version = {step}"))?;
        }
    }
    Ok(())
}
