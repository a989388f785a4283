//! Counters and histograms, rendered as Prometheus text. A few atomics do
//! the job; see `docs/design.md` ("Metrics").

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;


/// What committed commands did; added to [`Metrics`] only after their commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub instances_started: u64,
    pub instances_completed: u64,
    pub instances_cancelled: u64,
    pub instances_failed: u64,
    pub jobs_activated: u64,
    pub jobs_completed: u64,
    /// Ended instances deleted (retention, or on request).
    pub instances_deleted: u64,
    /// Expired messages deleted (retention).
    pub messages_deleted: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.instances_started += other.instances_started;
        self.instances_completed += other.instances_completed;
        self.instances_cancelled += other.instances_cancelled;
        self.instances_failed += other.instances_failed;
        self.jobs_activated += other.jobs_activated;
        self.jobs_completed += other.jobs_completed;
        self.instances_deleted += other.instances_deleted;
        self.messages_deleted += other.messages_deleted;
    }
}

struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in millionths, to keep it an integer.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(), count: AtomicU64::new(0), sum_micros: AtomicU64::new(0) }
    }

    fn observe(&self, value: f64) {
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            if value <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((value * 1_000_000.0) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

pub struct Metrics {
    counts: [AtomicU64; 8],
    commands: AtomicU64,
    commits: AtomicU64,
    /// CPU time the commit loop's thread has used, in nanoseconds: the one
    /// thread every write waits for, so its share of a core is how near the
    /// node is to its ceiling.
    commit_thread_cpu_nanos: AtomicU64,
    batch_size: Histogram,
    commit_seconds: Histogram,
    /// Time to make a group of commits durable, off the commit loop ([`store::Store::defers_sync`]).
    sync_seconds: Histogram,
    /// The instance cache: entries, hits, misses.
    cache: [AtomicU64; 3],
    /// Batches run again because another node wrote what they read (outcome: retried, or given up).
    conflicts: [AtomicU64; 2],
    /// Batches run again with a savepoint per command, because one failed after it wrote.
    reruns: AtomicU64,
    /// Commands refused because the commit loop's queue was full.
    overloaded: AtomicU64,
}

/// The bounds of the histograms of a batch's times, in seconds.
const SECONDS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            counts: Default::default(),
            commands: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_thread_cpu_nanos: AtomicU64::new(0),
            batch_size: Histogram::new(&[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]),
            commit_seconds: Histogram::new(SECONDS),
            sync_seconds: Histogram::new(SECONDS),
            cache: Default::default(),
            conflicts: Default::default(),
            reruns: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn record_commit(&self, commands: usize, took: Duration, counts: &Counts) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(commands as u64, Ordering::Relaxed);
        self.batch_size.observe(commands as f64);
        self.commit_seconds.observe(took.as_secs_f64());
        let values = [
            counts.instances_started,
            counts.instances_completed,
            counts.instances_cancelled,
            counts.instances_failed,
            counts.jobs_activated,
            counts.jobs_completed,
            counts.instances_deleted,
            counts.messages_deleted,
        ];
        for (counter, value) in self.counts.iter().zip(values) {
            counter.fetch_add(value, Ordering::Relaxed);
        }
    }

    /// The instance cache's size and its hits and misses so far (`Core::cache_stats`).
    pub fn record_cache(&self, (entries, (hits, misses)): (usize, (u64, u64))) {
        for (gauge, value) in self.cache.iter().zip([entries as u64, hits, misses]) {
            gauge.store(value, Ordering::Relaxed);
        }
    }

    /// A batch met a conflict: it runs again (`retried`), or its callers get the conflict.
    pub fn record_conflict(&self, retried: bool) {
        self.conflicts[usize::from(!retried)].fetch_add(1, Ordering::Relaxed);
    }

    /// A batch runs again with a savepoint per command ([`crate::Core::unguarded`]).
    pub fn record_rerun(&self) {
        self.reruns.fetch_add(1, Ordering::Relaxed);
    }

    /// A command was refused: the commit loop's queue was full.
    pub fn record_overloaded(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Commands refused so far because the commit loop's queue was full.
    pub fn overloaded(&self) -> u64 {
        self.overloaded.load(Ordering::Relaxed)
    }

    /// Batches run again with a savepoint per command, so far.
    pub fn reruns(&self) -> u64 {
        self.reruns.load(Ordering::Relaxed)
    }

    /// Conflicts so far: (retried, given up).
    pub fn conflicts(&self) -> (u64, u64) {
        (self.conflicts[0].load(Ordering::Relaxed), self.conflicts[1].load(Ordering::Relaxed))
    }

    /// A group of commits took `took` to be made durable.
    pub fn record_sync(&self, took: Duration) {
        self.sync_seconds.observe(took.as_secs_f64());
    }

    /// The commit loop's thread has used `cpu` so far.
    pub fn record_commit_thread_cpu(&self, cpu: Duration) {
        self.commit_thread_cpu_nanos.store(u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// CPU time the commit loop's thread has used so far (as of its last turn).
    pub fn commit_thread_cpu(&self) -> Duration {
        Duration::from_nanos(self.commit_thread_cpu_nanos.load(Ordering::Relaxed))
    }

    /// How many transactions committed, and how many commands they held.
    pub fn commits(&self) -> (u64, u64) {
        (self.commits.load(Ordering::Relaxed), self.commands.load(Ordering::Relaxed))
    }

    /// Prometheus text; `open` is the number of instances per status, read from the store.
    pub fn render(&self, open: &[(engine::Status, u64)]) -> String {
        let mut out = String::new();
        let load = |i: usize| self.counts[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP baton_instances_started_total Instances started.\n# TYPE baton_instances_started_total counter");
        let _ = writeln!(out, "baton_instances_started_total {}", load(0));
        let _ = writeln!(out, "# HELP baton_instances_ended_total Instances ended, by status.\n# TYPE baton_instances_ended_total counter");
        for (status, i) in [("completed", 1), ("cancelled", 2), ("failed", 3)] {
            let _ = writeln!(out, "baton_instances_ended_total{{status=\"{status}\"}} {}", load(i));
        }
        let _ = writeln!(out, "# HELP baton_jobs_activated_total Jobs handed to workers.\n# TYPE baton_jobs_activated_total counter");
        let _ = writeln!(out, "baton_jobs_activated_total {}", load(4));
        let _ = writeln!(out, "# HELP baton_jobs_completed_total Jobs completed by workers.\n# TYPE baton_jobs_completed_total counter");
        let _ = writeln!(out, "baton_jobs_completed_total {}", load(5));
        let _ = writeln!(out, "# HELP baton_instances_deleted_total Ended instances deleted with their history (retention ran out, or on request).\n# TYPE baton_instances_deleted_total counter");
        let _ = writeln!(out, "baton_instances_deleted_total {}", load(6));
        let _ = writeln!(out, "# HELP baton_messages_deleted_total Buffered messages deleted once expired for the retention period.\n# TYPE baton_messages_deleted_total counter");
        let _ = writeln!(out, "baton_messages_deleted_total {}", load(7));
        let _ = writeln!(out, "# HELP baton_instances Instances in the store, by status.\n# TYPE baton_instances gauge");
        for (status, count) in open {
            let _ = writeln!(out, "baton_instances{{status=\"{}\"}} {count}", status.as_str());
        }
        let cache = |i: usize| self.cache[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP baton_instance_cache_entries Running instances kept decoded between commands.\n# TYPE baton_instance_cache_entries gauge");
        let _ = writeln!(out, "baton_instance_cache_entries {}", cache(0));
        let _ = writeln!(out, "# HELP baton_instance_cache_lookups_total Instances commands looked for in the cache, by result.\n# TYPE baton_instance_cache_lookups_total counter");
        let _ = writeln!(out, "baton_instance_cache_lookups_total{{result=\"hit\"}} {}", cache(1));
        let _ = writeln!(out, "baton_instance_cache_lookups_total{{result=\"miss\"}} {}", cache(2));
        let _ = writeln!(out, "# HELP baton_commits_total Transactions committed.\n# TYPE baton_commits_total counter");
        let _ = writeln!(out, "baton_commits_total {}", self.commits.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP baton_commit_thread_cpu_seconds_total CPU time of the commit loop's thread, which every write waits for: near one second per second, it is the node's ceiling.\n# TYPE baton_commit_thread_cpu_seconds_total counter");
        let _ = writeln!(out, "baton_commit_thread_cpu_seconds_total {}", self.commit_thread_cpu().as_secs_f64());
        let (retried, given_up) = self.conflicts();
        let _ = writeln!(out, "# HELP baton_commit_conflicts_total Batches that wrote what another node wrote meanwhile, by outcome (run again, or answered with the conflict).\n# TYPE baton_commit_conflicts_total counter");
        let _ = writeln!(out, "baton_commit_conflicts_total{{outcome=\"retried\"}} {retried}");
        let _ = writeln!(out, "baton_commit_conflicts_total{{outcome=\"given_up\"}} {given_up}");
        let _ = writeln!(out, "# HELP baton_commit_batch_reruns_total Batches run again with a savepoint for each command, because a command run without one failed after it wrote.\n# TYPE baton_commit_batch_reruns_total counter");
        let _ = writeln!(out, "baton_commit_batch_reruns_total {}", self.reruns());
        let _ = writeln!(out, "# HELP baton_commands_refused_total Commands refused before the commit loop took them, because its queue was full (answered 503 overloaded).\n# TYPE baton_commands_refused_total counter");
        let _ = writeln!(out, "baton_commands_refused_total{{reason=\"queue_full\"}} {}", self.overloaded());
        self.batch_size.render(&mut out, "baton_commit_batch_size", "Commands committed together in one transaction.");
        self.commit_seconds.render(&mut out, "baton_commit_seconds", "Time to apply and commit one batch.");
        self.sync_seconds.render(&mut out, "baton_sync_seconds", "Time to make a group of commits durable (the log's fdatasync, on a thread beside the commit loop); their answers wait for it.");
        out
    }
}
