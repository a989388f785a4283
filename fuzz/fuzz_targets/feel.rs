//! FEEL: the first line is an expression (and, as unary tests, a decision
//! table's input entry); the rest, when it is a JSON object, its variables.
//! Parsing and evaluation report, stay within their limits, and never panic.
#![no_main]

struct Scope(serde_json::Map<String, serde_json::Value>);

impl feel::Variables for Scope {
    fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.get(name)
    }

    fn clock(&self) -> Option<i64> {
        Some(1_767_225_600_000)
    }

    fn seed(&self) -> Option<u64> {
        Some(7)
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (source, rest) = text.split_once('\n').unwrap_or((text, ""));
    let variables = Scope(serde_json::from_str(rest).unwrap_or_default());
    if let Ok(expression) = feel::Expression::parse(source) {
        if let Ok(value) = expression.evaluate_value(&variables) {
            if let Ok(tests) = feel::UnaryTests::parse_in_scope(source, &[], &[]) {
                let _ = tests.matches(&value, &variables);
            }
        }
        let _ = expression.evaluate(&variables);
    }
});
