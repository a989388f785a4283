//! The runtime on the in-memory store with a virtual clock: what `baton test`
//! runs scenarios against. Every operation is one committed transaction, as
//! in the server; the semantics (correlation, signals, child instances,
//! timers) are the runtime's own, so a scenario tests what the server does.

use std::collections::BTreeSet;

use engine::{HistoryEntry, Input, InstanceState, Millis, Variables};
use runtime::{Core, Deployed, Error, PublishCommand, SequentialIds, StartCommand};
use store::{InstanceFilter, MemoryStore, PageRequest, Store};

pub use runtime::Error as WorldError;

/// An instance as the runner sees it.
pub struct Instance {
    /// Start order (0-based); the tie-breaker for everything "oldest".
    pub seq: usize,
    pub state: InstanceState,
    pub deployed: Deployed,
}

pub struct World {
    pub now: Millis,
    store: MemoryStore,
    core: Core,
    /// Instance ids in the order they started.
    order: Vec<String>,
    known: BTreeSet<String>,
}

impl World {
    /// Instances started from now on raise an incident for an error nobody catches (Camunda 8's way).
    pub fn set_uncaught_errors_incident(&mut self, incident: bool) {
        self.core.uncaught_errors_incident = incident;
    }

    pub fn new(now: Millis) -> World {
        let store = MemoryStore::new();
        let core = {
            let mut read = store.read().expect("the memory store opens");
            Core::load(read.as_mut(), Box::new(SequentialIds::default()))
                .expect("an empty store loads")
        };
        World {
            now,
            store,
            core,
            order: Vec::new(),
            known: BTreeSet::new(),
        }
    }

    /// Runs one operation in its own transaction, as the server's commit
    /// loop runs a command ([`Core::isolated`]): it commits when the
    /// operation succeeds, and also when it faulted (only the fault's
    /// incident is left to commit then).
    fn transact<T>(
        &mut self,
        mut operation: impl FnMut(&mut Core, &mut dyn store::WriteTxn, Millis) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut txn = self.store.write()?;
        let now = self.now;
        let result = self
            .core
            .isolated(txn.as_mut(), now, |core, tx| operation(core, tx, now));
        // Any other error: dropping the transaction rolls it back; the core
        // changes only after a deployment has succeeded, so it has nothing to forget.
        if matches!(result, Ok(_) | Err(Error::Fault(_))) {
            if let Err(error) = txn.commit() {
                // The core's instance cache may hold what did not commit.
                let mut read = self.store.read()?;
                self.core.reload(read.as_mut())?;
                return Err(error.into());
            }
            self.note_new_instances()?;
        }
        result
    }

    /// Appends instances started since the last look, in start order.
    fn note_new_instances(&mut self) -> Result<(), Error> {
        let mut read = self.store.read()?;
        let mut all = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let found = read.instances(&InstanceFilter::default(), &page)?;
            all.extend(found.items);
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        drop(read);
        let mut fresh: Vec<(i64, Vec<u64>, String)> = all
            .into_iter()
            .filter(|row| !self.known.contains(&row.id))
            .map(|row| (row.started_at, natural_key(&row.id), row.id))
            .collect();
        fresh.sort();
        for (_, _, id) in fresh {
            self.known.insert(id.clone());
            self.order.push(id);
        }
        Ok(())
    }

    pub fn deploy(&mut self, xml: &str) -> Result<Vec<(String, u32)>, Error> {
        self.deploy_file("model.bpmn", xml)
    }

    /// Deploys one file by its name: `*.dmn` decisions and `*.form` forms as well as BPMN.
    pub fn deploy_file(&mut self, name: &str, xml: &str) -> Result<Vec<(String, u32)>, Error> {
        let file_name = name.rsplit('/').next().unwrap_or(name);
        let files = vec![(file_name.to_string(), xml.to_string())];
        let deployed =
            self.transact(|core, tx, now| core.deploy(tx, store::DEFAULT_TENANT, &files, now))?;
        Ok(deployed
            .workflows
            .into_iter()
            .map(|(process, version, _)| (process, version))
            .collect())
    }

    /// Starts an instance; returns its seq.
    pub fn start(
        &mut self,
        process_id: &str,
        version: Option<u32>,
        variables: Variables,
        business_key: Option<String>,
    ) -> Result<usize, Error> {
        let command = StartCommand {
            process_id: process_id.to_string(),
            version,
            variables,
            business_key,
            ..StartCommand::default()
        };
        let id = self.transact(|core, tx, now| core.start(tx, command.clone(), now))?;
        Ok(self.seq_of(&id).expect("a started instance is known"))
    }

    pub fn step(&mut self, seq: usize, input: Input) -> Result<(), Error> {
        let id = self.order[seq].clone();
        self.transact(|core, tx, now| core.input(tx, &id, input.clone(), now))
    }

    pub fn publish(
        &mut self,
        name: &str,
        correlation_key: &str,
        variables: Variables,
        ttl_ms: Millis,
        message_id: Option<String>,
    ) -> Result<(), Error> {
        let command = PublishCommand {
            tenant: store::DEFAULT_TENANT.to_string(),
            name: name.to_string(),
            correlation_key: correlation_key.to_string(),
            variables,
            ttl_ms,
            message_id,
        };
        self.transact(|core, tx, now| core.publish(tx, command.clone(), now))
            .map(|_| ())
    }

    pub fn broadcast(&mut self, name: &str, variables: Variables) -> Result<(), Error> {
        self.transact(|core, tx, now| {
            core.broadcast(tx, store::DEFAULT_TENANT, name, variables.clone(), now)
        })
    }

    /// Starts the workflows whose conditional start events `variables` make true.
    pub fn evaluate_conditionals(&mut self, workflow: Option<&str>, variables: Variables) -> Result<Vec<runtime::ConditionalStart>, Error> {
        self.transact(|core, tx, now| core.evaluate_conditionals(tx, store::DEFAULT_TENANT, workflow, variables.clone(), now))
    }

    /// Moves the clock forward; timers fall due in due-time order, each at its own time.
    pub fn advance(&mut self, by_ms: Millis) -> Result<(), Error> {
        let target = self.now + by_ms;
        loop {
            let next = self.store.read()?.next_due()?;
            match next {
                Some(due) if due <= target => {
                    self.now = self.now.max(due);
                    // A timer that faults is a defect: the scenario fails with it.
                    let fired =
                        self.transact(|core, tx, now| core.fire_due(tx, now, usize::MAX))?;
                    if fired == 0 && self.store.read()?.next_due()? == Some(due) {
                        return Err(Error::InvalidInput(format!(
                            "a timer due at {due} ms cannot fire"
                        )));
                    }
                }
                _ => break,
            }
        }
        self.now = target;
        Ok(())
    }

    pub fn instances(&self) -> Vec<Instance> {
        (0..self.order.len())
            .map(|seq| self.instance(seq))
            .collect()
    }

    pub fn instance(&self, seq: usize) -> Instance {
        let mut read = self.store.read().expect("the memory store reads");
        let row = read
            .instance(&self.order[seq])
            .expect("the memory store reads")
            .expect("a known instance exists");
        let deployed = self
            .core
            .deployed(&row.tenant, &row.process_id, row.version)
            .cloned()
            .expect("an instance's workflow is deployed");
        Instance {
            seq,
            state: row.state,
            deployed,
        }
    }

    pub fn seq_of(&self, id: &str) -> Option<usize> {
        self.order.iter().position(|known| known == id)
    }

    pub fn history(&self, seq: usize) -> Vec<HistoryEntry> {
        let mut read = self.store.read().expect("the memory store reads");
        let mut entries = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let found = read
                .history(&self.order[seq], &store::HistoryFilter::default(), &page)
                .expect("the memory store reads");
            entries.extend(found.items.into_iter().map(|row| row.entry));
            match found.next {
                Some(next) => page.after = Some(next),
                None => return entries,
            }
        }
    }

    /// The instance and its descendants (children of call activities), in start order.
    pub fn family(&self, seq: usize) -> Vec<Instance> {
        let mut members = vec![seq];
        let mut index = 0;
        let instances = self.instances();
        while index < members.len() {
            let id = &instances[members[index]].state.id;
            for instance in &instances {
                if instance
                    .state
                    .parent
                    .as_ref()
                    .is_some_and(|p| &p.instance_id == id)
                {
                    members.push(instance.seq);
                }
            }
            index += 1;
        }
        instances
            .into_iter()
            .filter(|i| members.contains(&i.seq))
            .collect()
    }
}

/// Orders ids like `i2` before `i10`.
fn natural_key(id: &str) -> Vec<u64> {
    id.split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap_or(u64::MAX))
        .collect()
}
