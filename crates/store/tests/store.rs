//! The in-memory store passes the store conformance suite.

#[test]
fn the_memory_store_passes_the_conformance_suite() {
    store::conformance::run(&|| Box::new(store::MemoryStore::new()));
}
