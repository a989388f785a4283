//! DMN import, then every decision evaluated with no inputs: errors are
//! reported, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else { return };
    if let Ok(definitions) = dmn::import(xml) {
        for decision in &definitions.decisions {
            let _ = definitions.evaluate_at(&decision.id, &Default::default(), Some(1_767_225_600_000));
        }
    }
});
