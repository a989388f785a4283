//! The compact binary form the memory store keeps instance states and history
//! entries in: MessagePack with struct fields by position (no field names),
//! so an instance waiting on a job takes a few hundred bytes in one
//! allocation instead of dozens of small ones. MessagePack is self-describing,
//! which the JSON variables (`serde_json::Value`) need to be read back.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Appends the encoding of `value` to `buffer`.
pub fn encode_into<T: Serialize + ?Sized>(buffer: &mut Vec<u8>, value: &T) -> Result<()> {
    rmp_serde::encode::write(buffer, value).map_err(|e| Error::other(format!("cannot encode a row: {e}")))
}

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut buffer = Vec::new();
    encode_into(&mut buffer, value)?;
    Ok(buffer)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::corrupt(format!("cannot decode a row: {e}")))
}

#[cfg(test)]
mod tests {
    use engine::{HistoryEntry, HistoryEvent, Incident, IncidentKind};
    use serde_json::json;

    use super::*;

    #[test]
    fn json_values_and_tagged_enums_come_back_unchanged() {
        let variables = json!({"n": 1, "neg": -5, "f": 1.5, "big": u64::MAX, "s": "x", "l": [null, true, {"a": []}]});
        let back: serde_json::Value = decode(&encode(&variables).unwrap()).unwrap();
        assert_eq!(back, variables);
        // Key order is kept (serde_json's preserve_order).
        assert_eq!(back.as_object().unwrap().keys().collect::<Vec<_>>(), ["n", "neg", "f", "big", "s", "l"]);

        let incident = Incident {
            key: 3,
            element_instance: 2,
            element_id: "t".into(),
            kind: IncidentKind::UnhandledError { job: 4, code: "E".into() },
            message: "m".into(),
            created_at: 7,
        };
        assert_eq!(decode::<Incident>(&encode(&incident).unwrap()).unwrap(), incident);

        let entry = HistoryEntry {
            at: 1_700_000_000_000,
            element_instance: 5,
            element_id: "task".into(),
            element_type: "serviceTask".into(),
            event: HistoryEvent::Completed,
            loop_counter: 1,
            started_at: 1_700_000_000_000,
            element_name: None,
            run: 1,
            iteration: 1,
            actor: None,
            reason: None,
            detail: None,
        };
        let bytes = encode(&entry).unwrap();
        // 48 bytes for the element's life, 6 for the audit fields left empty.
        assert!(bytes.len() <= 56, "a history entry takes {} bytes", bytes.len());
        assert_eq!(decode::<HistoryEntry>(&bytes).unwrap(), entry);
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        let error = decode::<HistoryEntry>(&[0xc1, 0x00]).unwrap_err();
        assert!(error.is_corrupt(), "{error}");
    }
}
