//! The writer's write-ahead log, handed to the operating system a commit at
//! a time.
//!
//! SQLite writes each frame of the log with two `pwrite`s, its 24-byte
//! header and then its page. A frame is 4 120 bytes, so the page straddles
//! two pages of the kernel's cache, and each call pays the kernel's set-up
//! (the inode's lock and times, a write begun and ended for each cache page
//! it touches): on a W1 run the log's writes took 17 % of the commit thread's
//! samples, of which the copying of bytes was a quarter.
//!
//! The writer connection opens its file through the VFS registered here
//! (`baton-log`): the platform's default VFS with one change. A file opened
//! as a write-ahead log gathers writes that continue one another in memory
//! and writes them in one call, at the latest when the page of a frame that
//! commits a transaction has been gathered (the header of such a frame
//! carries the size of the database after the commit, non-zero; other
//! frames carry zero). What follows a commit frame's header until the next
//! transaction's first header (its page, and the copies of it SQLite pads
//! the log with up to a sector's end when it syncs at each commit on a disk
//! without `POWERSAFE_OVERWRITE`, split around that sync) goes at once. So when SQLite's commit returns, and before the
//! new end of the log is published to readers (which SQLite does after
//! writing every frame), every byte of it is in the file, and a failed
//! write (a full disk) fails the commit as it did before. Nothing is made
//! durable later than before: syncing is unchanged (`Store::sync`, or
//! SQLite's own syncs, each of which writes what is gathered first).
//!
//! Everything that is not a plain append is written through at once, after
//! what is gathered: a write that does not continue the gathered bytes
//! writes those first. After the log is read (a page let go from the
//! writer's cache, a checkpoint, or SQLite going back over frames to
//! rewrite their checksums), writes go through until one continues the log
//! where it was last written: the rewritten headers of frames already
//! written are then never held back. Reads, size queries, truncation,
//! syncs, locks and file controls write what is gathered first, so the file
//! is never seen without it. A transaction too large to hold (more than
//! [`MOST_GATHERED`] bytes) is written in parts, as SQLite spills one.
//!
//! Written by hand, in the `unsafe` this needs: no maintained crate wraps
//! SQLite's default VFS with a change to one kind of file (docs/design.md).

use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rusqlite::ffi;
use store::{Error, Result};

/// The name the VFS is registered under.
pub(crate) const NAME: &CStr = c"baton-log";

/// Bytes gathered at most before they are written without a commit.
const MOST_GATHERED: usize = 4 << 20;

/// Bytes handed to the default VFS in one write at most: its `pwrite` takes
/// fewer than 128 KiB (SQLite writes at most a page and a header at a time,
/// and the default VFS masks a larger count to 17 bits).
const MOST_PER_WRITE: usize = 31 * 4096;

/// Bytes in the header of a frame of the log.
const FRAME_HEADER: usize = 24;

/// Writes handed to the operating system for logs opened through the VFS, since the process started.
static LOG_WRITES: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
pub(crate) fn log_writes() -> u64 {
    LOG_WRITES.load(Ordering::Relaxed)
}

/// The default VFS's address (a raw pointer is not `Sync`), and what registering ours came to.
static REGISTERED: OnceLock<std::result::Result<usize, String>> = OnceLock::new();

/// Registers the VFS (once per process); a connection opened with [`NAME`] uses it.
pub(crate) fn register() -> Result<()> {
    let registered = REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find returns SQLite's default VFS, which lives
        // as long as the process; ours copies it (every method but xOpen
        // stays the default's, which use only fields copied with it), is
        // leaked so that it lives as long, and is registered once.
        unsafe {
            let default = ffi::sqlite3_vfs_find(std::ptr::null());
            if default.is_null() {
                return Err("SQLite has no default VFS".to_string());
            }
            let mut vfs: ffi::sqlite3_vfs = std::ptr::read(default);
            vfs.szOsFile = vfs.szOsFile.max(c_int::try_from(std::mem::size_of::<LogFile>()).unwrap_or(c_int::MAX));
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = NAME.as_ptr();
            vfs.xOpen = Some(open);
            let vfs = Box::leak(Box::new(vfs));
            match ffi::sqlite3_vfs_register(vfs, 0) {
                ffi::SQLITE_OK => Ok(default as usize),
                code => Err(format!("registering the VFS {NAME:?} failed (SQLite code {code})")),
            }
        }
    });
    registered.as_ref().map(|_| ()).map_err(|message| Error::unavailable(message.clone()))
}

fn default_vfs() -> *mut ffi::sqlite3_vfs {
    match REGISTERED.get() {
        Some(Ok(address)) => *address as *mut ffi::sqlite3_vfs,
        _ => std::ptr::null_mut(),
    }
}

/// A write-ahead log opened through the VFS: the default VFS's file, and the bytes gathered for it.
#[repr(C)]
struct LogFile {
    /// What SQLite sees; first, so that a pointer to it is one to the whole.
    base: ffi::sqlite3_file,
    /// The default VFS's file, in memory of its own (`sqlite3_malloc`).
    inner: *mut ffi::sqlite3_file,
    /// Bytes written to the file from `gathered_at` on, not yet handed to `inner`.
    gathered: Vec<u8>,
    gathered_at: i64,
    /// Where the log was last written up to (the end of the last write).
    end: i64,
    /// The last frame header written was a commit frame's: until the next
    /// transaction's first header, what is written is the commit's end (its
    /// page, or the frames and parts of frames SQLite pads the log with to a
    /// sector's end around a sync) and goes to the file at once.
    committing: bool,
    /// The log was read since it was last appended to: writes go through
    /// until one continues it at `end`.
    read_back: bool,
}

impl LogFile {
    fn inner_methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: `inner` was opened successfully (`open`), so its methods are set, until `close`.
        unsafe { &*(*self.inner).pMethods }
    }

    /// Hands what is gathered to the file.
    fn write_gathered(&mut self) -> c_int {
        if self.gathered.is_empty() {
            return ffi::SQLITE_OK;
        }
        let Some(write) = self.inner_methods().xWrite else { return ffi::SQLITE_IOERR_WRITE };
        let mut code = ffi::SQLITE_OK;
        let mut at = self.gathered_at;
        for part in self.gathered.chunks(MOST_PER_WRITE) {
            LOG_WRITES.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `part` is in the buffer (at most MOST_PER_WRITE bytes), and `inner` is open.
            code = unsafe { write(self.inner, part.as_ptr().cast(), part.len() as c_int, at) };
            if code != ffi::SQLITE_OK {
                break;
            }
            at += part.len() as i64;
        }
        // Written or failed, the bytes are SQLite's again: a failed write
        // fails the transaction, whose frames SQLite writes anew.
        self.gathered.clear();
        code
    }

    fn write(&mut self, bytes: &[u8], offset: i64) -> c_int {
        let Ok(length) = i64::try_from(bytes.len()) else { return ffi::SQLITE_IOERR_WRITE };
        let header = bytes.len() == FRAME_HEADER;
        if header {
            // A commit frame's header carries the database's size after the commit; others zero.
            self.committing = bytes[4..8] != [0; 4];
        }
        let code = if self.read_back && offset != self.end {
            self.write_through(bytes, offset)
        } else {
            self.gather(bytes, offset, self.committing && !header)
        };
        self.end = offset + length;
        code
    }

    /// Writes `bytes` now, after what is gathered.
    fn write_through(&mut self, bytes: &[u8], offset: i64) -> c_int {
        let code = self.write_gathered();
        if code != ffi::SQLITE_OK {
            return code;
        }
        LOG_WRITES.fetch_add(1, Ordering::Relaxed);
        let Some(write) = self.inner_methods().xWrite else { return ffi::SQLITE_IOERR_WRITE };
        // SAFETY: `bytes` is SQLite's buffer (of fewer than 128 KiB: a page or a header), and `inner` is open.
        unsafe { write(self.inner, bytes.as_ptr().cast(), bytes.len() as c_int, offset) }
    }

    /// Adds `bytes` to what is gathered (writing that first if they do not
    /// continue it), and writes it all if they end a commit.
    fn gather(&mut self, bytes: &[u8], offset: i64, ends_commit: bool) -> c_int {
        self.read_back = false;
        let gathered_end = self.gathered_at + self.gathered.len() as i64;
        if !self.gathered.is_empty() && offset != gathered_end {
            let code = self.write_gathered();
            if code != ffi::SQLITE_OK {
                return code;
            }
        }
        if self.gathered.is_empty() {
            self.gathered_at = offset;
        }
        self.gathered.extend_from_slice(bytes);
        if ends_commit || self.gathered.len() >= MOST_GATHERED {
            return self.write_gathered();
        }
        ffi::SQLITE_OK
    }
}

/// The file behind a pointer SQLite passes to one of [`LOG_METHODS`].
///
/// # Safety
/// `file` must be one that [`open`] set up as a [`LogFile`] and not yet closed.
unsafe fn log_file<'a>(file: *mut ffi::sqlite3_file) -> &'a mut LogFile {
    // SAFETY: the caller's promise; SQLite uses a file from one thread at a time.
    unsafe { &mut *file.cast::<LogFile>() }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let default = default_vfs();
    // SAFETY: `default` is SQLite's default VFS (registered before any open
    // through ours); `file` has room for `szOsFile` bytes of ours, at least
    // the default's; `inner` gets the default's `szOsFile`.
    unsafe {
        let Some(default_open) = default.as_ref().and_then(|vfs| vfs.xOpen) else {
            (*file).pMethods = std::ptr::null();
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return default_open(default, name, file, flags, out_flags);
        }
        let size = (*default).szOsFile.max(0) as u64;
        let inner = ffi::sqlite3_malloc64(size).cast::<ffi::sqlite3_file>();
        if inner.is_null() {
            (*file).pMethods = std::ptr::null();
            return ffi::SQLITE_NOMEM;
        }
        std::ptr::write_bytes(inner.cast::<u8>(), 0, size as usize);
        let code = default_open(default, name, inner, flags, out_flags);
        if code != ffi::SQLITE_OK {
            // As SQLite does: a file whose methods were set is closed even when its open failed.
            if let Some(close) = (*inner).pMethods.as_ref().and_then(|methods| methods.xClose) {
                close(inner);
            }
            ffi::sqlite3_free(inner.cast());
            (*file).pMethods = std::ptr::null();
            return code;
        }
        std::ptr::write(
            file.cast::<LogFile>(),
            LogFile {
                base: ffi::sqlite3_file { pMethods: &LOG_METHODS },
                inner,
                gathered: Vec::new(),
                gathered_at: 0,
                end: 0,
                committing: false,
                read_back: false,
            },
        );
        ffi::SQLITE_OK
    }
}

/// A log's methods: version 1, as SQLite maps and locks the database file and its shared memory, never the log.
static LOG_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file once, after its last use; the LogFile is
    // read out of SQLite's memory (and dropped), and `inner` freed after its close.
    unsafe {
        let log = log_file(file);
        let written = log.write_gathered();
        let closed = match log.inner_methods().xClose {
            Some(close) => close(log.inner),
            None => ffi::SQLITE_OK,
        };
        let LogFile { inner, .. } = std::ptr::read(file.cast::<LogFile>());
        ffi::sqlite3_free(inner.cast());
        (*file).pMethods = std::ptr::null();
        if written != ffi::SQLITE_OK { written } else { closed }
    }
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: SQLite passes a buffer of `amount` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), amount.max(0) as usize) };
    // SAFETY: `file` is a log SQLite opened through `open`.
    unsafe { log_file(file) }.write(bytes, offset)
}

unsafe extern "C" fn read(file: *mut ffi::sqlite3_file, data: *mut c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: `file` is a log SQLite opened through `open`; `data` is SQLite's buffer.
    unsafe {
        let log = log_file(file);
        let code = log.write_gathered();
        if code != ffi::SQLITE_OK {
            return code;
        }
        log.read_back = true;
        match log.inner_methods().xRead {
            Some(read) => read(log.inner, data, amount, offset),
            None => ffi::SQLITE_IOERR_READ,
        }
    }
}

/// Writes what is gathered, then hands the call to the default VFS's file
/// (answering `$missing` where that file has no such method).
macro_rules! after_writing {
    ($name:ident ( $($arg:ident : $ty:ty),* ) => $method:ident) => {
        after_writing!($name($($arg: $ty),*) => $method, or ffi::SQLITE_OK);
    };
    ($name:ident ( $($arg:ident : $ty:ty),* ) => $method:ident, or $missing:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: `file` is a log SQLite opened through `open`; the
            // arguments are SQLite's, passed on as they came.
            unsafe {
                let log = log_file(file);
                let code = log.write_gathered();
                if code != ffi::SQLITE_OK {
                    return code;
                }
                match log.inner_methods().$method {
                    Some(method) => method(log.inner $(, $arg)*),
                    None => $missing,
                }
            }
        }
    };
}

after_writing!(truncate(size: i64) => xTruncate);
after_writing!(sync(flags: c_int) => xSync);
after_writing!(file_size(size: *mut i64) => xFileSize);
after_writing!(lock(level: c_int) => xLock);
after_writing!(unlock(level: c_int) => xUnlock);
after_writing!(check_reserved_lock(out: *mut c_int) => xCheckReservedLock);
after_writing!(file_control(op: c_int, arg: *mut c_void) => xFileControl, or ffi::SQLITE_NOTFOUND);

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as for the methods above.
    unsafe {
        let log = log_file(file);
        log.inner_methods().xSectorSize.map_or(4096, |size| size(log.inner))
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as for the methods above.
    unsafe {
        let log = log_file(file);
        log.inner_methods().xDeviceCharacteristics.map_or(0, |characteristics| characteristics(log.inner))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    fn blobs(connection: &Connection, rows: u32, bytes: usize) {
        connection
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO filler (x) SELECT randomblob(?2) FROM n",
                rusqlite::params![rows, bytes],
            )
            .unwrap();
    }

    /// What a crash right now would leave: the file and its log copied as
    /// they are, opened elsewhere (SQLite recovers the log from its frames'
    /// checksums, and keeps only the transactions whose frames all check).
    fn copied_as_a_crash_leaves_it(path: &Path, to: &Path) -> Connection {
        std::fs::copy(path, to).unwrap();
        let mut log = path.as_os_str().to_owned();
        log.push("-wal");
        let mut copied_log = to.as_os_str().to_owned();
        copied_log.push("-wal");
        std::fs::copy(log, copied_log).unwrap();
        Connection::open(to).unwrap()
    }

    fn count_and_sum(connection: &Connection) -> (i64, i64) {
        connection.query_row("SELECT COUNT(*), TOTAL(length(x)) FROM filler", [], |row| Ok((row.get(0)?, row.get::<_, f64>(1)? as i64))).unwrap()
    }

    /// A transaction of one frame, its commit frame, written where the log
    /// went back to after a transaction that had spilled pages to it, read
    /// them back and rolled back (so its header is written through, below
    /// where the log was last written): its page is in the file when the
    /// commit returns too.
    #[test]
    fn a_one_frame_commit_after_a_rolled_back_spill_is_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store_with_filler(dir.path());
        let path = store.path().to_path_buf();
        let writer = store.writer.lock().unwrap();
        blobs(&writer, 10, 100);
        let reader = Connection::open(&path).unwrap();
        writer.execute_batch("PRAGMA cache_size=20; BEGIN").unwrap();
        blobs(&writer, 400, 2000);
        count_and_sum(&writer);
        writer.execute_batch("ROLLBACK").unwrap();
        writer.execute("UPDATE filler SET x = zeroblob(150) WHERE id = 1", []).unwrap();
        assert_eq!(count_and_sum(&reader), (10, 1050), "a reader");
        let copy = copied_as_a_crash_leaves_it(&path, &dir.path().join("crash.db"));
        assert_eq!(count_and_sum(&copy), (10, 1050), "a crash");
    }

    /// Transactions of every shape, committed and rolled back, in a seeded
    /// random order: large and small, spilling to the log (a cache of a few
    /// pages) and reading it back, updating and deleting rows, with the log
    /// copied into the file and started over now and then. After every
    /// commit a reader, and a copy of the file and its log as a crash leaves
    /// them, hold exactly what was committed.
    #[test]
    fn every_commit_of_a_random_mix_is_in_the_file_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store_with_filler(dir.path());
        let path = store.path().to_path_buf();
        let writer = store.writer.lock().unwrap();
        let reader = Connection::open(&path).unwrap();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        let mut committed = (0, 0);
        for step in 0..300 {
            let cache = [10, 20, 2_000][next(3) as usize];
            writer.execute_batch(&format!("PRAGMA cache_size={cache}; BEGIN")).unwrap();
            match next(5) {
                0 | 1 => blobs(&writer, 1 + next(300) as u32, 1 + next(3_000) as usize),
                2 => {
                    writer.execute("UPDATE filler SET x = zeroblob(?1) WHERE id % 7 = ?2", [1 + next(2_000), next(7)]).unwrap();
                }
                // One row: most often one page, one frame.
                3 => {
                    writer.execute("UPDATE filler SET x = zeroblob(?1) WHERE id = (SELECT max(id) FROM filler)", [1 + next(2_000)]).unwrap();
                }
                _ => {
                    writer.execute("DELETE FROM filler WHERE id % 5 = ?1", [next(5)]).unwrap();
                }
            }
            if next(2) == 0 {
                // Read back everything, through the log where pages were spilled.
                count_and_sum(&writer);
            }
            if next(4) == 0 {
                writer.execute_batch("ROLLBACK").unwrap();
            } else {
                writer.execute_batch("COMMIT").unwrap();
                committed = count_and_sum(&writer);
            }
            if next(8) == 0 {
                writer.execute_batch("PRAGMA wal_checkpoint(PASSIVE)").unwrap();
            }
            assert_eq!(count_and_sum(&reader), committed, "a reader, after step {step}");
            if step % 10 == 9 {
                let copy = copied_as_a_crash_leaves_it(&path, &dir.path().join(format!("crash-{step}.db")));
                assert_eq!(count_and_sum(&copy), committed, "a crash, after step {step}");
                let check: String = copy.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
                assert_eq!(check, "ok", "after step {step}");
            }
        }
    }

    /// Where SQLite syncs the log at each commit and pads it to a whole
    /// sector (`synchronous=FULL`, and a disk that does not promise that a
    /// write leaves the rest of its sector alone: `psow=0`), it writes the
    /// commit frame again after itself, splitting a frame's write at the
    /// sector's end around a sync: every commit is still whole in the file
    /// when it returns, as a reader and a crash find it.
    #[test]
    fn commits_padded_to_a_sector_and_synced_are_in_the_file_when_they_return() {
        super::register().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("padded.db");
        let uri = format!("file:{}?psow=0", path.display());
        let writer = Connection::open_with_flags_and_vfs(&uri, rusqlite::OpenFlags::default(), super::NAME).unwrap();
        writer.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE filler (id INTEGER PRIMARY KEY, x BLOB);").unwrap();
        let reader = Connection::open(&path).unwrap();
        let mut expected = (0, 0);
        for (round, (rows, bytes)) in [(1, 10), (3, 3000), (1, 100), (40, 2000), (1, 5), (7, 700)].into_iter().enumerate() {
            blobs(&writer, rows, bytes);
            expected = (expected.0 + i64::from(rows), expected.1 + i64::from(rows) * bytes as i64);
            writer.execute("UPDATE filler SET x = x WHERE id = 1", []).unwrap();
            assert_eq!(count_and_sum(&reader), expected, "a reader, after commit {round}");
            let copy = copied_as_a_crash_leaves_it(&path, &dir.path().join(format!("crash-{round}.db")));
            assert_eq!(count_and_sum(&copy), expected, "a crash, after commit {round}");
        }
    }

    /// A commit's frames reach the operating system in one write, not two per page.
    #[test]
    fn a_commit_is_written_to_the_log_in_a_few_calls() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store_with_filler(dir.path());
        let writer = store.writer.lock().unwrap();
        let before = super::log_writes();
        writer.execute_batch("BEGIN").unwrap();
        blobs(&writer, 50, 3000);
        writer.execute_batch("COMMIT").unwrap();
        // 50 pages and more, each a frame of a header and a page: SQLite
        // alone makes 100 writes and more; gathered, they are two of at most 31 pages.
        let writes = super::log_writes() - before;
        assert!((2..=3).contains(&writes), "{writes} writes");
    }

    /// Every committed transaction is in the file when the commit returns,
    /// as readers and a crash find it: small ones, one larger than what is
    /// gathered, and one whose frames SQLite wrote before the commit (its
    /// cache spilled), then wrote again in place and whose checksums it
    /// rewrote at the commit (the log read back in between).
    #[test]
    fn what_is_committed_is_in_the_file_when_the_commit_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store_with_filler(dir.path());
        let path = store.path().to_path_buf();
        let writer = store.writer.lock().unwrap();
        let reader = Connection::open(&path).unwrap();
        let mut expected = (0, 0);
        for (round, (rows, bytes)) in [(10, 100), (200, 3000), (1_500, 4000), (1, 10)].into_iter().enumerate() {
            writer.execute_batch("BEGIN").unwrap();
            blobs(&writer, rows, bytes);
            writer.execute_batch("COMMIT").unwrap();
            expected = (expected.0 + i64::from(rows), expected.1 + i64::from(rows) * bytes as i64);
            assert_eq!(count_and_sum(&reader), expected, "a reader, after commit {round}");
            let copy = copied_as_a_crash_leaves_it(&path, &dir.path().join(format!("crash-{round}.db")));
            assert_eq!(count_and_sum(&copy), expected, "a crash, after commit {round}");
        }
        // A cache of 20 pages: the transaction spills its first rows' pages
        // to the log, then changes them again.
        writer.execute_batch("PRAGMA cache_size=20; BEGIN").unwrap();
        blobs(&writer, 400, 2000);
        writer.execute("UPDATE filler SET x = zeroblob(2001) WHERE id > ?1", [expected.0]).unwrap();
        writer.execute_batch("COMMIT").unwrap();
        expected = (expected.0 + 400, expected.1 + 400 * 2001);
        assert_eq!(count_and_sum(&reader), expected, "a reader, after the spilled transaction");
        let copy = copied_as_a_crash_leaves_it(&path, &dir.path().join("crash-spilled.db"));
        assert_eq!(count_and_sum(&copy), expected, "a crash, after the spilled transaction");
        let check: String = copy.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
}
