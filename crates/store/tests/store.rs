//! The in-memory store passes the store conformance suite.

#[test]
fn the_memory_store_passes_the_conformance_suite() {
    store::conformance::run(&|| Box::new(store::MemoryStore::new()));
}

/// Bringing a variables index up to date copies only what changed: a value
/// changed is dropped as indexed and added as it is, one removed is dropped,
/// one new is added, and those that hold are left alone.
#[test]
fn a_variables_index_is_brought_up_to_date_by_what_changed() {
    use serde_json::json;
    let map = |value: serde_json::Value| value.as_object().unwrap().clone();
    let mut indexed = map(json!({"same": [1, {"a": true}], "changed": 1, "removed": "x"}));
    let now = map(json!({"same": [1, {"a": true}], "changed": 2.5, "new": null}));
    let entries = store::VariableEntries::bring(&mut indexed, &now);
    assert_eq!(entries.dropped, [("changed".to_string(), json!(1)), ("removed".to_string(), json!("x"))]);
    assert_eq!(entries.added, [("changed".to_string(), json!(2.5)), ("new".to_string(), json!(null))]);
    assert_eq!(indexed.len(), 3);
    assert!(now.iter().all(|(name, value)| indexed.get(name) == Some(value)), "the index holds the variables now");
    let again = store::VariableEntries::bring(&mut indexed, &now);
    assert!(again.is_empty(), "nothing changed since: {again:?}");
}

/// Issue 16, item 1, in the memory store: a list of instances decodes the
/// state of those it lists (and of those that match but for what the state
/// says), not of every instance it passes over: the rows' other columns
/// are kept apart from the encoded state and tested first (counted by the
/// instances a read decodes, not by time). 20 000 instances of the default
/// tenant, then 32 of another.
#[test]
fn an_instance_list_decodes_only_what_it_may_list() {
    use store::*;
    let memory = MemoryStore::new();
    let mut txn = memory.write().unwrap();
    for (i, tenant) in (0..20_000).map(|i| (i, "default")).chain((20_000..20_032).map(|i| (i, "acme"))) {
        let mut row = conformance::instance(&format!("i{i:05}"), if i % 2 == 0 { "even" } else { "odd" }, engine::Status::Running, i);
        row.tenant = tenant.into();
        txn.put_instance(&row).unwrap();
    }
    txn.commit().unwrap();
    let mut read = memory.read().unwrap();
    let acme = Some(vec!["acme".to_string()]);
    let first = PageRequest::first(50);
    let cost = |read: &mut Box<dyn ReadTxn + '_>, filter: InstanceFilter, expected: usize| {
        let before = instances_decoded();
        let found = read.instances(&filter, &first).unwrap().items;
        assert_eq!(found.len(), expected, "{filter:?}");
        let decoded = instances_decoded() - before;
        assert!(decoded <= 51, "{filter:?} decoded {decoded}");
    };
    cost(&mut read, InstanceFilter { tenants: acme.clone(), status: Some(engine::Status::Running), ..InstanceFilter::default() }, 32);
    cost(&mut read, InstanceFilter { tenants: acme.clone(), process_id: Some("odd".into()), ..InstanceFilter::default() }, 16);
    cost(&mut read, InstanceFilter { tenants: acme.clone(), order: InstanceOrder::Workflow, descending: true, ..InstanceFilter::default() }, 32);
    cost(&mut read, InstanceFilter { tenants: Some(vec!["default".into()]), status: Some(engine::Status::Suspended), ..InstanceFilter::default() }, 0);
    cost(&mut read, InstanceFilter { order: InstanceOrder::Status, ..InstanceFilter::default() }, 50);
    assert!(!read.message_started_active("default", "odd", "k").unwrap());
}
