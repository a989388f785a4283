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
