//! The `history` table: an instance's entries, several to a row (schema 17).
//!
//! A command appends a few entries to each instance it steps (a W1 instance
//! has eight in two commands). A row per entry cost a B-tree insert, a
//! statement and a key of its own for each; the write transaction instead
//! keeps what it appends ([`PendingHistory`]) and, when it commits (or a
//! savepoint begins), writes each instance's entries as one row: a *chunk*,
//! keyed by the instance and the seq of its last entry, holding `[seq,
//! entry]` pairs in the compact form (`store::compact`). Keyed by its last
//! seq, a chunk is found by the same range a single entry was: the rows
//! with `seq > after` are exactly those holding an entry after `after`.
//!
//! Chunks of one instance never overlap: an entry written again with a seq
//! already stored (the store contract allows it; the runtime never does it)
//! merges the chunks it overlaps into one. A chunk holds at most
//! [`CHUNK_ENTRIES`] entries, so a page of history decodes a bounded amount
//! however many entries one command appended.
//!
//! Rows written before schema 17 hold one entry each (`entries` is NULL):
//! both forms read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection};
use store::rows::{Cursor, HistoryFilter, HistoryRow, Page};
use store::Result;

use crate::sql_error;
use crate::txn::{count_steps, from_stored, read_error};

/// The most entries one row holds.
pub(crate) const CHUNK_ENTRIES: usize = 64;

/// Instances the ends of whose history [`HistoryEnds`] keeps at most: past
/// it, what it knows is forgotten (each instance is then looked up once).
const MOST_ENDS: usize = 100_000;

/// Instance ids to their history's end, hashed with foldhash: each
/// instance a turn writes is looked up and learned again (SipHash's share
/// of the commit thread was 2 % under W1).
type Ends = HashMap<String, u64, foldhash::fast::RandomState>;

/// The highest seq stored of each instance whose history this store's
/// writer wrote in a committed transaction, so that the lookup for a stored
/// row at or after a new row's first entry is skipped where every new entry
/// comes after that end (the usual case: a W2 instance appends eleven times).
///
/// Sound because the writer is the file's only writer (the lock file) and
/// what is known never says less than is stored: an instance's end is
/// forgotten the moment a transaction writes or deletes its history (so a
/// second write in the same transaction looks), and learned again only when
/// that transaction commits, as the end it wrote last. A rollback to a
/// savepoint can only take rows away (and a transaction rolled back learns
/// nothing), so what it learns can say more than is stored, never less; as
/// can an instance deleted after its history was written in the same
/// transaction. Saying more costs a lookup; saying less would let a row
/// overlap another.
#[derive(Default)]
pub(crate) struct HistoryEnds {
    ends: Mutex<Ends>,
}

impl HistoryEnds {
    fn ends(&self) -> MutexGuard<'_, Ends> {
        match self.ends.lock() {
            Ok(ends) => ends,
            // A panic mid-change: what is known is dropped, not trusted.
            Err(poisoned) => {
                let mut ends = poisoned.into_inner();
                ends.clear();
                ends
            }
        }
    }

    /// Forgets what is known of `instance_id`'s history, and returns it: it is about to change.
    pub(crate) fn forget(&self, instance_id: &str) -> Option<u64> {
        self.ends().remove(instance_id)
    }

    fn learn(&self, written: Vec<(String, u64)>) {
        let mut ends = self.ends();
        if ends.len() + written.len() > MOST_ENDS {
            ends.clear();
        }
        ends.extend(written);
    }
}

/// History appended in a write transaction and not yet written, in the order it came.
///
/// A savepoint writes what is pending before it begins, so what is pending
/// inside one was all appended since: rolling it back drops it all, and
/// SQLite's rollback takes back any of it written meanwhile (by a read of
/// history or a deletion in the savepoint). Outside savepoints (the commit
/// loop runs a batch's commands without) the entries wait until the commit.
#[derive(Default)]
pub(crate) struct PendingHistory {
    rows: Vec<HistoryRow>,
    /// The end of each instance's history as this transaction wrote it, for
    /// [`HistoryEnds`] at its commit.
    written: Vec<(String, u64)>,
}

impl PendingHistory {
    pub(crate) fn push(&mut self, row: HistoryRow) {
        self.rows.push(row);
    }

    /// Drops what is pending: a rollback to the savepoint it was appended in.
    pub(crate) fn discard(&mut self) {
        self.rows.clear();
    }

    /// Tells `ends` what the transaction wrote: it has committed.
    pub(crate) fn committed(&mut self, ends: &HistoryEnds) {
        ends.learn(std::mem::take(&mut self.written));
    }

    /// Writes every pending entry (a row per instance and [`CHUNK_ENTRIES`]),
    /// and returns how many statements that took.
    pub(crate) fn write(&mut self, connection: &Connection, ends: &HistoryEnds) -> Result<u64> {
        if self.rows.is_empty() {
            return Ok(0);
        }
        let mut rows = std::mem::take(&mut self.rows);
        // By instance, then seq; a seq appended twice keeps the later entry
        // (the sort is stable, and `dedup_by` keeps the first of a run, so reversed first).
        rows.reverse();
        rows.sort_by(|a, b| (a.instance_id.as_str(), a.seq).cmp(&(b.instance_id.as_str(), b.seq)));
        rows.dedup_by(|later, kept| later.instance_id == kept.instance_id && later.seq == kept.seq);
        let mut statements = 0;
        let mut rest = rows.as_slice();
        while let Some(first) = rest.first() {
            let end = rest.iter().position(|r| r.instance_id != first.instance_id).unwrap_or(rest.len());
            let (one, others) = rest.split_at(end);
            let known_end = ends.forget(&first.instance_id);
            let (written, end) = write_instance(connection, &first.instance_id, one, known_end)?;
            statements += written;
            self.written.push((first.instance_id.clone(), end));
            rest = others;
        }
        Ok(statements)
    }
}

/// Writes one instance's new entries (sorted by seq, no seq twice), where
/// `known_end` is the highest seq stored, if [`HistoryEnds`] knows it;
/// returns the statements run and the highest seq stored after.
fn write_instance(connection: &Connection, instance_id: &str, rows: &[HistoryRow], known_end: Option<u64>) -> Result<(u64, u64)> {
    let first = rows[0].seq;
    let last = rows[rows.len() - 1].seq;
    // The usual case: no stored row holds an entry at or after the first new
    // one. (Asked apart: an INSERT ... SELECT ... WHERE NOT EXISTS on the
    // table it reads makes SQLite copy the row through a temporary table.)
    let mut looked_up = 0;
    let overlaps = match known_end {
        Some(end) if end < first => false,
        _ => {
            let mut later = connection
                .prepare_cached("SELECT 1 FROM history WHERE instance_id = ? AND seq >= ? LIMIT 1")
                .map_err(sql_error)?;
            let overlaps = later.exists(params![instance_id, first]).map_err(sql_error)?;
            count_steps(&later);
            looked_up = 1;
            overlaps
        }
    };
    if overlaps {
        return merge(connection, instance_id, rows).map(|(statements, end)| (statements + looked_up, end));
    }
    for chunk in rows.chunks(CHUNK_ENTRIES) {
        insert_chunk(connection, instance_id, chunk.iter().map(|r| (r.seq, &r.entry)))?;
    }
    Ok((looked_up + rows.len().div_ceil(CHUNK_ENTRIES) as u64, last))
}

/// Writes `rows` where stored rows hold entries at or after the first of
/// them (an entry written again, or a gap filled): those rows and the new
/// entries become new rows, a new entry replacing a stored one of its seq.
/// Returns the statements run and the highest seq stored after.
fn merge(connection: &Connection, instance_id: &str, rows: &[HistoryRow]) -> Result<(u64, u64)> {
    let mut merged: BTreeMap<u64, engine::HistoryEntry> = BTreeMap::new();
    let mut replaced = Vec::new();
    stored_rows(connection, instance_id, rows[0].seq, |row, entries| {
        replaced.push(row);
        merged.extend(entries);
        true
    })?;
    let mut statements = 1;
    let mut delete = connection.prepare_cached("DELETE FROM history WHERE instance_id = ? AND seq = ?").map_err(sql_error)?;
    for seq in replaced {
        delete.execute(params![instance_id, seq]).map_err(sql_error)?;
        statements += 1;
    }
    merged.extend(rows.iter().map(|row| (row.seq, row.entry.clone())));
    let merged: Vec<(u64, &engine::HistoryEntry)> = merged.iter().map(|(seq, entry)| (*seq, entry)).collect();
    for chunk in merged.chunks(CHUNK_ENTRIES) {
        insert_chunk(connection, instance_id, chunk.iter().copied())?;
        statements += 1;
    }
    // Rows stored after the last merged one were among those read (every row from the first new entry on).
    let end = merged.last().map_or(0, |(seq, _)| *seq);
    Ok((statements, end))
}

/// Inserts one row holding `entries` (in seq order, at least one).
fn insert_chunk<'e>(
    connection: &Connection,
    instance_id: &str,
    entries: impl Iterator<Item = (u64, &'e engine::HistoryEntry)>,
) -> Result<()> {
    let entries: Vec<(u64, &engine::HistoryEntry)> = entries.collect();
    let last = entries.last().map_or(0, |(seq, _)| *seq);
    let blob = store::compact::encode(&entries)?;
    connection
        .prepare_cached("INSERT INTO history (instance_id, seq, entry, entries) VALUES (?, ?, ?, ?)")
        .and_then(|mut insert| insert.execute(params![instance_id, last, blob, entries.len()]))
        .map_err(sql_error)?;
    Ok(())
}

/// The entries of one stored row: a chunk (`entries` given), or one entry
/// written before schema 17, whose seq is the row's.
fn decode_row(
    seq: u64,
    entry: rusqlite::types::ValueRef<'_>,
    entries: Option<u64>,
) -> Result<Vec<(u64, engine::HistoryEntry)>> {
    match (entries, entry) {
        (Some(_), rusqlite::types::ValueRef::Blob(bytes)) => store::compact::decode(bytes),
        (Some(_), other) => Err(store::Error::corrupt(format!("a history chunk is a {:?}, not a BLOB", other.data_type()))),
        (None, entry) => Ok(vec![(seq, from_stored(entry).map_err(read_error)?)]),
    }
}

/// Hands `each` the stored rows of one instance holding entries at or after
/// seq `from`, in order: each row's key and its entries (some may come
/// before `from`). Stops when `each` answers false.
fn stored_rows(
    connection: &Connection,
    instance_id: &str,
    from: u64,
    mut each: impl FnMut(u64, Vec<(u64, engine::HistoryEntry)>) -> bool,
) -> Result<()> {
    let mut statement = connection
        .prepare_cached("SELECT seq, entry, entries FROM history WHERE instance_id = ? AND seq >= ? ORDER BY seq")
        .map_err(sql_error)?;
    let mut rows = statement.query(params![instance_id, from]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(read_error)? {
        let seq: u64 = row.get(0).map_err(read_error)?;
        if !each(seq, decode_row(seq, row.get_ref(1).map_err(read_error)?, row.get(2).map_err(read_error)?)?) {
            break;
        }
    }
    drop(rows);
    count_steps(&statement);
    Ok(())
}

/// A page of one instance's entries after seq `after` that `filter` takes.
pub(crate) fn read(
    connection: &Connection,
    instance_id: &str,
    after: u64,
    filter: &HistoryFilter,
    limit: usize,
) -> Result<Page<HistoryRow>> {
    // Only the rows holding entries after the cursor are read, and only
    // until the page is full; the filters look into each entry, decoded here.
    let mut items = Vec::new();
    stored_rows(connection, instance_id, after.saturating_add(1), |_, entries| {
        for (seq, entry) in entries {
            if seq > after && filter.matches(&entry) {
                items.push(HistoryRow { instance_id: instance_id.to_string(), seq, entry });
                if items.len() > limit {
                    return false;
                }
            }
        }
        true
    })?;
    let next = (items.len() > limit).then(|| items[limit - 1].cursor());
    items.truncate(limit);
    Ok(Page { items, next })
}
