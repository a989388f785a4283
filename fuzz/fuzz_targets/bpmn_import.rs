//! The BPMN importer, on any text: it reports, it never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(xml) = std::str::from_utf8(data) {
        let _ = bpmn::import(xml).into_workflows();
    }
});
