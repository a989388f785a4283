//! Camunda-style keys: 64-bit integers, sent as decimal strings.
//!
//! Baton names an instance by a UUID and what is inside it (element
//! instances, jobs, user tasks, incidents) by `<instance id>.<local key>`.
//! Camunda's clients need one integer per object, so each key is made of the
//! instance's number (1, 2, ... in creation order, kept in the store) and the
//! object's local key:
//!
//! ```text
//!   key = number << 23 | local        (local 0: the process instance itself)
//! ```
//!
//! 40 bits of number (about 1.1 × 10¹² instances) and 23 bits of local key
//! (8 388 607 objects per instance) fit a positive `i64`, which is what
//! Camunda's Java client parses. A process definition's key is made of its
//! deployment's number and its place in that deployment:
//! `deployment << 12 | place`. Decoding is arithmetic plus one indexed
//! lookup (number → instance id), so every key costs O(log n) to resolve.

use crate::error::ApiError;

const LOCAL_BITS: u32 = 23;
const LOCAL_MAX: u64 = (1 << LOCAL_BITS) - 1;
const NUMBER_MAX: u64 = (1 << 40) - 1;
const PLACE_BITS: u32 = 12;

/// The key of an instance, or of an object inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub number: u64,
    /// 0 for the process instance itself.
    pub local: u64,
}

impl Key {
    pub fn instance(number: u64) -> Key {
        Key { number, local: 0 }
    }

    /// The key of the object `local` inside instance `number`, if it fits in 63 bits.
    pub fn inside(number: u64, local: u64) -> Option<Key> {
        (number <= NUMBER_MAX && local <= LOCAL_MAX).then_some(Key { number, local })
    }

    pub fn render(self) -> String {
        self.as_i64().to_string()
    }

    /// The key as the integer Zeebe's gRPC messages carry.
    pub fn as_i64(self) -> i64 {
        ((self.number << LOCAL_BITS) | self.local) as i64
    }

    /// Reads a key sent as a string (or a JSON number's text); `what` names it in the error.
    pub fn parse(what: &str, text: &str) -> Result<Key, ApiError> {
        let value = parse_u63(what, text)?;
        Ok(Key { number: value >> LOCAL_BITS, local: value & LOCAL_MAX })
    }

    /// Baton's key of the object inside `instance_id`.
    pub fn baton(self, instance_id: &str) -> String {
        format!("{instance_id}.{}", self.local)
    }
}

/// A key or `null` where an object's local key is beyond what a Camunda key holds.
pub fn render_inside(number: u64, local: u64) -> serde_json::Value {
    Key::inside(number, local).map_or(serde_json::Value::Null, |key| serde_json::Value::String(key.render()))
}

/// A process definition's key: its deployment and its place in it.
pub fn definition(deployment: u64, place: u32) -> String {
    definition_value(deployment, place).to_string()
}

/// What a deployment holds: each kind has its quarter of the 12 bits of places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Process = 0,
    Form = 1,
    Decision = 2,
    Requirements = 3,
}

/// The key of the thing of `kind` at `place` among its deployment's things of that kind.
pub fn deployed(kind: Kind, deployment: u64, place: usize) -> i64 {
    let place = (kind as u64) << (PLACE_BITS - 2) | (place as u64 & ((1 << (PLACE_BITS - 2)) - 1));
    ((deployment << PLACE_BITS) | place) as i64
}

/// A process definition's key as the integer Zeebe's gRPC messages carry.
pub fn definition_value(deployment: u64, place: u32) -> i64 {
    ((deployment << PLACE_BITS) | u64::from(place)) as i64
}

pub fn parse_definition(what: &str, text: &str) -> Result<(u64, u32), ApiError> {
    let value = parse_u63(what, text)?;
    Ok((value >> PLACE_BITS, (value & ((1 << PLACE_BITS) - 1)) as u32))
}

fn parse_u63(what: &str, text: &str) -> Result<u64, ApiError> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|&value| value > 0 && value <= i64::MAX as u64)
        .ok_or_else(|| ApiError::new("request-invalid", format!("{what} '{text}' is not a key: keys are positive 64-bit integers")))
}

/// Instance ids by number, remembered: a number names one instance for good
/// (numbers are never given again), so a remembered id is never wrong, and
/// the key of each job a worker completes costs no read. Bounded: emptied
/// when full.
#[derive(Default)]
pub struct Numbers(std::sync::Mutex<std::collections::HashMap<u64, String>>);

impl Numbers {
    const CAPACITY: usize = 65_536;

    pub fn get(&self, number: u64) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&number).cloned()
    }

    pub fn remember(&self, number: u64, id: &str) {
        let mut ids = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ids.len() >= Self::CAPACITY {
            ids.clear();
        }
        ids.insert(number, id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_numbers_stay_bounded() {
        let numbers = Numbers::default();
        numbers.remember(1, "a");
        assert_eq!(numbers.get(1).as_deref(), Some("a"));
        assert_eq!(numbers.get(2), None);
        for n in 0..Numbers::CAPACITY as u64 {
            numbers.remember(n + 10, "x");
        }
        assert!(numbers.0.lock().unwrap().len() <= Numbers::CAPACITY);
    }

    #[test]
    fn keys_round_trip_and_stay_positive_i64() {
        for (number, local) in [(1, 0), (1, 1), (7, 12345), (NUMBER_MAX, LOCAL_MAX)] {
            let key = Key::inside(number, local).unwrap();
            let text = key.render();
            assert!(text.parse::<i64>().is_ok_and(|v| v > 0), "{text}");
            assert_eq!(Key::parse("key", &text).unwrap(), key);
        }
        assert_eq!(Key::inside(1, LOCAL_MAX + 1), None);
        assert_eq!(Key::inside(NUMBER_MAX + 1, 0), None);
        assert_eq!(parse_definition("k", &definition(9, 3)).unwrap(), (9, 3));
        for bad in ["", "0", "-4", "x1", "9223372036854775808"] {
            assert!(Key::parse("jobKey", bad).is_err(), "{bad}");
        }
    }
}
