//! The instance cache: decoded states of the running instances commands
//! touched last, so the next command on an instance (the activation of the
//! job its start created, which reads its variables; the job's completion)
//! does not read and decode it from the store again.
//!
//! The cache only ever holds what the store holds once the current
//! transaction commits: an entry is put back after its command wrote it, and
//! forgotten when that command fails ([`InstanceCache::forget_written`]) or
//! the transaction does not commit ([`InstanceCache::clear`], through
//! `Core::reload`). The commit loop is the only writer of its store, so
//! nothing else can make an entry stale. Ended instances are not kept. The
//! cache is bounded; when full, an entry chosen round-robin over the slots
//! makes room (cheap, and good enough: a hit is an optimisation, a miss
//! reads the store).

use indexmap::IndexMap;

use engine::InstanceState;

use crate::core::Deployed;

/// How many instances the cache holds by default: several times the
/// instances a busy server has between their start and their job's
/// activation; about 8 KB each for W1's states (docs/benchmarks.md), so
/// under 10 MB in all, whatever the number of open instances.
pub const DEFAULT_CAPACITY: usize = 1024;

/// An instance as a command works on it: its state and what the store keeps beside it.
pub(crate) struct Loaded {
    /// [`store::InstanceRow::number`].
    pub number: u64,
    pub state: InstanceState,
    pub deployed: Deployed,
    pub start_key: Option<String>,
    pub history_count: u64,
    /// The `update_count` the store holds for it (`None`: not written yet):
    /// writing it back checks that nobody else wrote it meanwhile.
    pub stored: Option<u64>,
    /// The state's `variables_changes` the store's index of its own
    /// variables was last brought up to (`None`: never, a new instance):
    /// flushing sends the variables only when they changed since.
    pub variables_indexed: Option<u64>,
    /// The variables the store's index holds for the instance (as stored,
    /// or as last sent; none for a new one), so that the store brings its
    /// index up to date without reading and decoding the stored state
    /// again (a twentieth of the commit thread's time). A second copy of
    /// the instance's own variables while it is cached.
    pub indexed_variables: engine::Variables,
    /// Whether the store holds the instance's timers and jobs
    /// (`Write::HoldWaits`): it was suspended when last written.
    pub held: bool,
    /// Written by the current command.
    pub changed: bool,
}

pub(crate) struct InstanceCache {
    entries: IndexMap<String, Loaded, foldhash::fast::RandomState>,
    capacity: usize,
    /// Instances put back by the current command: not committed yet.
    written: Vec<String>,
    /// The slot the next eviction empties.
    victim: usize,
    hits: u64,
    misses: u64,
}

impl InstanceCache {
    pub fn new(capacity: usize) -> InstanceCache {
        InstanceCache {
            entries: IndexMap::default(),
            capacity,
            written: Vec::new(),
            victim: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// Takes an instance out for a command to change; the command puts it back.
    pub fn take(&mut self, id: &str) -> Option<Loaded> {
        let found = self.entries.swap_remove(id);
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    #[cfg(test)]
    pub fn get(&self, id: &str) -> Option<&Loaded> {
        self.entries.get(id)
    }

    /// Keeps an instance a command has read or written; `written` if it wrote it.
    pub fn put(&mut self, id: String, mut loaded: Loaded, written: bool) {
        if loaded.state.status.is_ended() || self.capacity == 0 {
            self.entries.swap_remove(&id);
            return;
        }
        loaded.changed = false;
        if !self.entries.contains_key(&id) {
            while self.entries.len() >= self.capacity {
                self.victim = (self.victim + 1) % self.entries.len();
                self.entries.swap_remove_index(self.victim);
            }
        }
        if written {
            self.written.push(id.clone());
        }
        self.entries.insert(id, loaded);
    }

    /// A command begins: what the previous one wrote is committed or forgotten.
    pub fn begin_command(&mut self) {
        self.written.clear();
    }

    /// The current command failed and was rolled back: forget what it wrote.
    pub fn forget_written(&mut self) {
        for id in std::mem::take(&mut self.written) {
            self.entries.swap_remove(&id);
        }
    }

    /// The transaction did not commit: nothing cached can be trusted.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.written.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// (hits, misses) since the cache was made.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn loaded(id: &str, status: engine::Status) -> Loaded {
        let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"><process id="p" isExecutable="true"><startEvent id="s"/></process></definitions>"#;
        let workflow = bpmn::import(xml).into_workflows().unwrap().remove(0);
        let mut state = store::conformance::state(id, status);
        state.status = status;
        Loaded {
            number: 1,
            state,
            deployed: Deployed {
                tenant: store::DEFAULT_TENANT.into(),
                model: Arc::new(crate::DeployedModel::compiled(Arc::new(workflow), Arc::from(xml))),
                version: 1,
                deployment: 1,
            },
            start_key: None,
            history_count: 0,
            stored: None,
            variables_indexed: None,
            indexed_variables: engine::Variables::new(),
            held: false,
            changed: true,
        }
    }

    #[test]
    fn a_failed_command_forgets_what_it_wrote_and_keeps_what_it_read() {
        let mut cache = InstanceCache::new(10);
        cache.begin_command();
        cache.put("old".into(), loaded("old", engine::Status::Running), true);
        cache.begin_command();
        cache.put(
            "read".into(),
            loaded("read", engine::Status::Running),
            false,
        );
        cache.put(
            "written".into(),
            loaded("written", engine::Status::Running),
            true,
        );
        cache.forget_written();
        assert!(
            cache.get("old").is_some(),
            "written by an earlier, committed command"
        );
        assert!(cache.get("read").is_some());
        assert!(cache.get("written").is_none());
        assert!(!cache.get("old").unwrap().changed);
    }

    #[test]
    fn ended_instances_are_not_kept_and_the_capacity_holds() {
        let mut cache = InstanceCache::new(3);
        cache.put("a".into(), loaded("a", engine::Status::Running), true);
        cache.put("a".into(), loaded("a", engine::Status::Completed), true);
        assert!(
            cache.get("a").is_none(),
            "an ended instance leaves the cache"
        );
        for n in 0..10 {
            cache.put(format!("i{n}"), loaded("i", engine::Status::Running), false);
            assert!(cache.len() <= 3);
        }
        assert!(cache.get("i9").is_some(), "the newest entry is kept");
        assert!(
            cache.take("i9").is_some() && cache.get("i9").is_none(),
            "taking moves it out"
        );
        assert_eq!(cache.hits_and_misses(), (1, 0));
        let mut none = InstanceCache::new(0);
        none.put("a".into(), loaded("a", engine::Status::Running), false);
        assert_eq!(none.len(), 0);
    }
}
