//! `Table<T>`: the keyed collections of an instance (element instances, jobs,
//! timers, ...), as a vector sorted by key.
//!
//! An instance holds a handful of each, and a `BTreeMap` leaf reserves room
//! for eleven: for element instances that is about 3 KB per instance of empty
//! slots. A sorted vector holds what is there, looks up by binary search,
//! iterates in key order (so outputs stay deterministic) and serializes as
//! the same JSON map.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::state::Key;

#[derive(Clone, PartialEq)]
pub struct Table<T> {
    entries: Vec<(Key, T)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { entries: Vec::new() }
    }
}

impl<T: fmt::Debug> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(k, v)| (k, v))).finish()
    }
}

impl<T> Table<T> {
    pub fn new() -> Self {
        Table { entries: Vec::new() }
    }

    fn find(&self, key: &Key) -> Result<usize, usize> {
        self.entries.binary_search_by_key(key, |(k, _)| *k)
    }

    pub fn get(&self, key: &Key) -> Option<&T> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &Key) -> Option<&mut T> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key(&self, key: &Key) -> bool {
        self.find(key).is_ok()
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: Key, value: T) -> Option<T> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &Key) -> Option<T> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> + '_ {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &T)> + '_ {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<T> std::ops::Index<&Key> for Table<T> {
    type Output = T;

    fn index(&self, key: &Key) -> &T {
        self.get(key).expect("no entry for this key in the table")
    }
}

impl<T> IntoIterator for Table<T> {
    type Item = (Key, T);
    type IntoIter = std::vec::IntoIter<(Key, T)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<T: Serialize> Serialize for Table<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for TableVisitor<T> {
            type Value = Table<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from keys to entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Table<T>, A::Error> {
                let mut table = Table { entries: Vec::with_capacity(access.size_hint().unwrap_or(0)) };
                while let Some((key, value)) = access.next_entry::<Key, T>()? {
                    table.insert(key, value);
                }
                Ok(table)
            }
        }

        deserializer.deserialize_map(TableVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn keeps_key_order_and_round_trips_as_a_map() {
        let mut table = Table::new();
        assert_eq!(table.insert(5, "five"), None);
        table.insert(1, "one");
        table.insert(3, "three");
        assert_eq!(table.insert(3, "THREE"), Some("three"));
        assert_eq!(table.keys().copied().collect::<Vec<_>>(), [1, 3, 5]);
        assert_eq!((table[&5], table.get(&2), table.len()), ("five", None, 3));
        assert_eq!(table.remove(&1), Some("one"));
        let json = serde_json::to_string(&table).unwrap();
        assert_eq!(json, r#"{"3":"THREE","5":"five"}"#);
        let back: Table<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.values().cloned().collect::<Vec<_>>(), ["THREE", "five"]);
    }
}
