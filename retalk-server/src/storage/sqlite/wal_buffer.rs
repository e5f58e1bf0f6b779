//! A thin SQLite VFS that merges the writes of one WAL commit into one
//! system call.
//!
//! SQLite writes each frame of its write-ahead log with two `pwrite`s (the
//! 24-byte frame header, then the page), so a group commit that dirtied 20
//! pages costs 40 system calls, about 3 per `send_message` in the relay's
//! benchmark. On the project's virtual machine a frame written so costs 5
//! to 12 µs, most of it the calls themselves, and a frame among 20 written
//! in one `pwrite` 1 to 1.6 µs (`retalk-bench/pwrite_cost.py`;
//! docs/benchmarks.md, round 4). This VFS is SQLite's own
//! default VFS with one change: the WAL file's contiguous writes are
//! collected in memory and handed to the default VFS as one write.
//!
//! # When the collected bytes reach the file
//!
//! They must be in the file (the kernel's page cache) before SQLite
//! publishes the commit in the shared WAL index, because from then on
//! other connections (the metrics reader, an operator's `sqlite3`) read
//! those frames from the file, and the writer's syncer fsyncs the file and
//! then answers. SQLite writes the commit's last frame, header then page,
//! immediately before it publishes, so:
//!
//! * the page that follows a commit frame's header (a header whose
//!   "database size after commit" field is not zero) is flushed with
//!   everything before it;
//! * a commit header written on its own (SQLite's checksum rewrite after an
//!   overwrite inside a transaction, which reads each frame back first) is
//!   written through at once;
//! * anything else that could observe the file flushes first: a read, a
//!   sync, a truncate, a size query, a file control, a non-contiguous write,
//!   closing, and more than [`LIMIT`] bytes collected.
//!
//! As a last line of defence the writer calls [`flush`] after every
//! commit; it finds nothing to write unless the rules above missed a case
//! (tests assert that it never does).
//!
//! A failed write keeps the collected bytes (they are retried by the next
//! flush) and reports the error to SQLite, which then fails the
//! transaction: nothing SQLite was told is written is ever dropped. The
//! database file is byte for byte what the default VFS writes and the log
//! holds the same frames, so any SQLite (the reference relay's included)
//! reads them.
//!
//! Every other file (the database itself, journals, temporary files) is
//! opened by the default VFS in place and never sees this code.
//!
//! This and `page_cache` are the relay's only `unsafe` code: a VFS is a
//! table of C callbacks over memory SQLite allocates. Each block says why
//! it is sound.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;
use rusqlite::Connection;

/// The VFS's registered name (pass to [`Connection::open_with_flags_and_vfs`]).
pub const NAME: &CStr = c"retalk-wal-buffer";

/// Collected bytes after which a WAL file flushes whatever the rules say
/// (a very large transaction): bounds the buffer's memory.
pub const LIMIT: usize = 1 << 20;

/// Most bytes handed to the default VFS in one write. Its Unix `xWrite`
/// takes at most 128 KiB - 1 per call (SQLite never writes more at once);
/// this is the largest multiple of 4 KiB below that.
const MAX_WRITE: usize = 0x1f000;

/// Size of a WAL frame header (SQLite's file format).
const FRAME_HEADER: usize = 24;

/// The state of one open WAL file, at the start of the memory SQLite
/// allocates for it; the default VFS's own file follows.
#[repr(C)]
struct WalFile {
    /// What SQLite sees: only `pMethods` (our methods).
    base: ffi::sqlite3_file,
    /// The default VFS's file, right after this struct.
    inner: *mut ffi::sqlite3_file,
    /// Collected writes, contiguous, starting at `start`.
    pending: Vec<u8>,
    start: i64,
    /// Where the page of the commit frame whose header was just written
    /// goes: the write there completes the commit.
    commit_page_at: Option<i64>,
    /// Writes SQLite asked for, and writes handed on (read by the tests).
    stats: Stats,
}

/// What one WAL file's buffering did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Writes SQLite asked for.
    pub asked: u64,
    /// Writes handed to the default VFS.
    pub issued: u64,
    /// Commit headers written on their own (SQLite's checksum rewrite).
    pub headers_alone: u64,
}

impl WalFile {
    fn inner_methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: `inner` was opened successfully (see `open`), so its
        // methods pointer is set and lives as long as the default VFS.
        unsafe { &*(*self.inner).pMethods }
    }

    /// Writes `bytes` at `offset` through the default VFS, in pieces it
    /// accepts (see [`MAX_WRITE`]).
    fn write_through(&mut self, bytes: &[u8], offset: i64) -> c_int {
        let Some(write) = self.inner_methods().xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let mut at = offset;
        for piece in bytes.chunks(MAX_WRITE) {
            // At most MAX_WRITE, so the length fits.
            let len = piece.len() as c_int;
            // SAFETY: `inner` is an open file of the default VFS, and the
            // pointer and length describe `piece`.
            let rc = unsafe { write(self.inner, piece.as_ptr().cast(), len, at) };
            self.stats.issued += 1;
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            at += piece.len() as i64;
        }
        ffi::SQLITE_OK
    }

    /// Writes what is collected. On failure the bytes stay for a retry.
    fn flush(&mut self) -> c_int {
        if self.pending.is_empty() {
            return ffi::SQLITE_OK;
        }
        let pending = std::mem::take(&mut self.pending);
        let rc = self.write_through(&pending, self.start);
        self.pending = pending;
        if rc == ffi::SQLITE_OK {
            self.pending.clear();
        }
        rc
    }

    fn write(&mut self, data: &[u8], offset: i64) -> c_int {
        self.stats.asked += 1;
        let end = self.start + self.pending.len() as i64;
        if !self.pending.is_empty() && offset != end {
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let commit_header = data.len() == FRAME_HEADER && data[4..8] != [0; 4];
        let completes_commit = self.commit_page_at == Some(offset);
        self.commit_page_at = commit_header.then_some(offset + FRAME_HEADER as i64);
        if commit_header && self.pending.is_empty() {
            // A header rewritten on its own: no page follows to flush it.
            self.stats.headers_alone += 1;
            return self.write_through(data, offset);
        }
        if self.pending.is_empty() {
            self.start = offset;
        }
        self.pending.extend_from_slice(data);
        if completes_commit || self.pending.len() >= LIMIT {
            return self.flush();
        }
        ffi::SQLITE_OK
    }
}

/// The default VFS, which ours wraps.
struct Vfs {
    inner: *mut ffi::sqlite3_vfs,
}

// SAFETY: it points to a VFS object that live for the whole process and
// that SQLite itself shares between threads.
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}

static VFS: OnceLock<Result<Vfs, c_int>> = OnceLock::new();

/// Where the default VFS's file starts inside ours.
const fn inner_offset() -> usize {
    std::mem::size_of::<WalFile>().next_multiple_of(16)
}

/// Registers the VFS (once per process; later calls return the first
/// result). Not the default VFS: only connections that name it use it.
pub fn register() -> rusqlite::Result<()> {
    // Before SQLite starts, which the registration below does.
    super::page_cache::install();
    let registered = VFS.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are thread-safe;
        // the copy is leaked, so it outlives every connection using it.
        unsafe {
            let rc = ffi::sqlite3_initialize();
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            let inner = ffi::sqlite3_vfs_find(ptr::null());
            if inner.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let mut ours = ptr::read(inner);
            ours.pNext = ptr::null_mut();
            ours.zName = NAME.as_ptr();
            let Some(size) = usize::try_from(ours.szOsFile)
                .ok()
                .and_then(|n| c_int::try_from(n + inner_offset()).ok())
            else {
                return Err(ffi::SQLITE_ERROR);
            };
            ours.szOsFile = size;
            ours.xOpen = Some(open);
            let ours = Box::into_raw(Box::new(ours));
            let rc = ffi::sqlite3_vfs_register(ours, 0);
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            Ok(Vfs { inner })
        }
    });
    match registered {
        Ok(_) => Ok(()),
        Err(rc) => Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(*rc),
            Some("cannot register the WAL-buffering VFS".into()),
        )),
    }
}

fn vfs() -> Option<&'static Vfs> {
    VFS.get().and_then(|r| r.as_ref().ok())
}

/// `xOpen`: the WAL gets our methods around the default VFS's file; every
/// other file is the default VFS's own, opened in place.
unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(vfs) = vfs() else {
        return ffi::SQLITE_ERROR;
    };
    // SAFETY (whole function): SQLite hands us `szOsFile` bytes at `file`,
    // which is at least `inner_offset()` plus the default VFS's size, and
    // the other arguments as the default VFS expects them.
    let Some(inner_open) = (*vfs.inner).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        return inner_open(vfs.inner, name, file, flags, out_flags);
    }
    let inner = file
        .cast::<u8>()
        .add(inner_offset())
        .cast::<ffi::sqlite3_file>();
    (*inner).pMethods = ptr::null();
    let rc = inner_open(vfs.inner, name, inner, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        if let Some(close) = (*inner).pMethods.as_ref().and_then(|m| m.xClose) {
            close(inner);
        }
        (*file).pMethods = ptr::null();
        return rc;
    }
    ptr::write(
        file.cast::<WalFile>(),
        WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            inner,
            pending: Vec::new(),
            start: 0,
            commit_page_at: None,
            stats: Stats::default(),
        },
    );
    ffi::SQLITE_OK
}

/// Our file behind a pointer SQLite gives back to a method.
///
/// # Safety
/// `file` must be a WAL file opened by [`open`] and not yet closed.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    &mut *file.cast::<WalFile>()
}

/// The default VFS's methods and file behind one of our WAL files, for
/// the methods that only pass a call on.
///
/// # Safety
/// As for [`wal`].
unsafe fn inner(
    file: *mut ffi::sqlite3_file,
) -> (&'static ffi::sqlite3_io_methods, *mut ffi::sqlite3_file) {
    let inner = wal(file).inner;
    // The default VFS's method table is static.
    (&*(*inner).pMethods, inner)
}

/// Flushes, then (if that worked) passes the call on, as [`inner`].
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    then: impl FnOnce(&ffi::sqlite3_io_methods, *mut ffi::sqlite3_file) -> c_int,
) -> c_int {
    let rc = wal(file).flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (methods, file) = inner(file);
    then(methods, file)
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let rc = wal(file).flush();
    let w = ptr::read(file.cast::<WalFile>());
    let closed = match w.inner_methods().xClose {
        Some(close) => close(w.inner),
        None => ffi::SQLITE_OK,
    };
    (*file).pMethods = ptr::null();
    drop(w);
    if rc != ffi::SQLITE_OK {
        rc
    } else {
        closed
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    flushed(file, |m, f| {
        m.xRead
            .map_or(ffi::SQLITE_IOERR_READ, |read| read(f, buf, amt, offset))
    })
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    let Ok(len) = usize::try_from(amt) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    wal(file).write(data, offset)
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    flushed(file, |m, f| {
        m.xTruncate
            .map_or(ffi::SQLITE_IOERR_TRUNCATE, |truncate| truncate(f, size))
    })
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    flushed(file, |m, f| {
        m.xSync
            .map_or(ffi::SQLITE_IOERR_FSYNC, |sync| sync(f, flags))
    })
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    flushed(file, |m, f| {
        m.xFileSize
            .map_or(ffi::SQLITE_IOERR_FSTAT, |file_size| file_size(f, size))
    })
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (m, f) = inner(file);
    m.xLock.map_or(ffi::SQLITE_OK, |lock| lock(f, level))
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (m, f) = inner(file);
    m.xUnlock.map_or(ffi::SQLITE_OK, |unlock| unlock(f, level))
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (m, f) = inner(file);
    m.xCheckReservedLock.map_or_else(
        || {
            *out = 0;
            ffi::SQLITE_OK
        },
        |check| check(f, out),
    )
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    flushed(file, |m, f| {
        m.xFileControl
            .map_or(ffi::SQLITE_NOTFOUND, |control| control(f, op, arg))
    })
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (m, f) = inner(file);
    m.xSectorSize.map_or(4096, |sector_size| sector_size(f))
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (m, f) = inner(file);
    m.xDeviceCharacteristics
        .map_or(0, |characteristics| characteristics(f))
}

/// Version 1 methods: a WAL file has no shared memory and is never mapped,
/// so SQLite never asks it for either.
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// Runs `f` on `conn`'s WAL file if it is open and ours.
fn with_wal<T>(conn: &Connection, f: impl FnOnce(&mut WalFile) -> T) -> Option<T> {
    let mut file: *mut ffi::sqlite3_file = ptr::null_mut();
    // SAFETY: the connection is open and used by this thread only (we hold
    // `&Connection`, which is not `Sync`); SQLITE_FCNTL_JOURNAL_POINTER
    // writes the journal's or WAL's file pointer (or null) into `file`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_JOURNAL_POINTER,
            ptr::from_mut(&mut file).cast(),
        )
    };
    if rc != ffi::SQLITE_OK || file.is_null() {
        return None;
    }
    // SAFETY: a file whose methods are ours was opened by `open` and stays
    // open while the connection is; only this connection's thread uses it.
    unsafe {
        if !ptr::eq((*file).pMethods, &WAL_METHODS) {
            return None;
        }
        Some(f(wal(file)))
    }
}

/// Writes whatever `conn`'s WAL still holds in memory; returns how many
/// bytes that was. After a commit this is always 0 (the rules in the module
/// documentation flush every commit before SQLite publishes it); the writer
/// calls it anyway, so that a case those rules missed still reaches the
/// file before the syncer fsyncs it and the group is answered.
pub fn flush(conn: &Connection) -> rusqlite::Result<usize> {
    match with_wal(conn, |w| (w.pending.len(), w.flush())) {
        None => Ok(0),
        Some((n, ffi::SQLITE_OK)) => Ok(n),
        Some((_, rc)) => Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("writing the buffered WAL".into()),
        )),
    }
}

/// What `conn`'s WAL buffering has done so far (`None`: no WAL open, or
/// not through this VFS).
#[cfg(test)]
pub fn stats(conn: &Connection) -> Option<Stats> {
    with_wal(conn, |w| w.stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::OpenFlags;

    /// The tests' database: WAL, commits unsynced (as the relay's), one
    /// table with an index, so a row dirties pages in two B-trees.
    const SCHEMA: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
         CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, k TEXT, v BLOB); \
         CREATE INDEX IF NOT EXISTS t_k ON t(k, id);";

    fn open_buffered(path: &std::path::Path) -> Connection {
        register().unwrap();
        let conn = Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            NAME,
        )
        .unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn
    }

    fn rows(conn: &Connection) -> (i64, i64) {
        conn.query_row(
            "SELECT count(*), ifnull(sum(length(v)), 0) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    /// Every commit is in the file when COMMIT returns: another connection
    /// (default VFS) sees it at once, and nothing is left to flush.
    #[test]
    fn every_commit_is_in_the_file_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let conn = open_buffered(&path);
        conn.execute_batch("PRAGMA wal_autocheckpoint=50").unwrap();
        let reader = Connection::open(&path).unwrap();
        // Rows and body bytes the writer has committed, counted here.
        let mut expect = (0i64, 0i64);
        for group in 0..300i64 {
            let tx = conn.unchecked_transaction().unwrap();
            // 1 to 40 rows to 1 to 40 keys: commits of one frame and of many.
            let n = 1 + group % 40;
            for i in 0..n {
                let v = vec![b'x'; (100 + (group * 37 + i * 11) % 900) as usize];
                tx.execute(
                    "INSERT INTO t(k, v) VALUES(?1, ?2)",
                    rusqlite::params![format!("key{}", (group * 7 + i) % 41), v],
                )
                .unwrap();
                expect.0 += 1;
                expect.1 += v.len() as i64;
            }
            if group % 5 == 0 {
                let (gone, bytes): (i64, i64) = tx
                    .query_row(
                        "SELECT count(*), ifnull(sum(length(v)), 0) FROM t \
                         WHERE id % 13 = 0 AND id > ?1",
                        [group],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                tx.execute("DELETE FROM t WHERE id % 13 = 0 AND id > ?1", [group])
                    .unwrap();
                expect.0 -= gone;
                expect.1 -= bytes;
            }
            tx.commit().unwrap();
            assert_eq!(flush(&conn).unwrap(), 0, "group {group} left bytes behind");
            assert_eq!(
                rows(&reader),
                expect,
                "group {group}: the reader sees the commit"
            );
        }
        assert!(expect.0 > 1000);
        // Two writes a frame asked for, about one a commit issued.
        let stats = stats(&conn).unwrap();
        assert!(stats.issued * 10 < stats.asked, "{stats:?}");
        let check: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    /// A transaction larger than the page cache spills frames before it
    /// commits, then overwrites some of them and rewrites their checksums
    /// (SQLite's own paths for that): the result reads back intact, from
    /// this connection, another one, and after reopening.
    #[test]
    fn spilled_and_rewritten_frames_read_back_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let conn = open_buffered(&path);
            conn.execute_batch("PRAGMA cache_size=10; PRAGMA cache_spill=10")
                .unwrap();
            for round in 0..3 {
                let tx = conn.unchecked_transaction().unwrap();
                for i in 0..2000 {
                    tx.execute(
                        "INSERT INTO t(k, v) VALUES(?1, zeroblob(300))",
                        [format!("k{}", (i * 31) % 97)],
                    )
                    .unwrap();
                }
                // Touch pages spilled earlier in this transaction again.
                tx.execute("UPDATE t SET v = zeroblob(200) WHERE id % 3 = ?1", [round])
                    .unwrap();
                tx.commit().unwrap();
                assert_eq!(flush(&conn).unwrap(), 0);
            }
            let reader = Connection::open(&path).unwrap();
            assert_eq!(rows(&reader), rows(&conn));
            assert_eq!(rows(&conn).0, 6000);
            // The paths this test is for were taken: headers rewritten
            // alone (written through at once), after reads of spilled frames.
            let stats = stats(&conn).unwrap();
            assert!(stats.headers_alone > 0, "{stats:?}");
        }
        let again = Connection::open(&path).unwrap();
        assert_eq!(rows(&again).0, 6000);
        let check: String = again
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    /// A file standing in for the disk: records each write it is handed,
    /// and refuses writes while `fail` is set.
    #[repr(C)]
    struct Disk {
        base: ffi::sqlite3_file,
        writes: Vec<(i64, Vec<u8>)>,
        fail: bool,
    }

    unsafe extern "C" fn disk_write(
        file: *mut ffi::sqlite3_file,
        buf: *const c_void,
        amt: c_int,
        offset: i64,
    ) -> c_int {
        // SAFETY: only `buffered` below makes these files.
        let disk = unsafe { &mut *file.cast::<Disk>() };
        if disk.fail {
            return ffi::SQLITE_IOERR_WRITE;
        }
        let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), amt as usize) };
        disk.writes.push((offset, data.to_vec()));
        ffi::SQLITE_OK
    }

    static DISK_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
        iVersion: 1,
        xClose: None,
        xRead: None,
        xWrite: Some(disk_write),
        xTruncate: None,
        xSync: None,
        xFileSize: None,
        xLock: None,
        xUnlock: None,
        xCheckReservedLock: None,
        xFileControl: None,
        xSectorSize: None,
        xDeviceCharacteristics: None,
        xShmMap: None,
        xShmLock: None,
        xShmBarrier: None,
        xShmUnmap: None,
        xFetch: None,
        xUnfetch: None,
    };

    fn buffered(disk: &mut Disk) -> WalFile {
        WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            inner: ptr::from_mut(disk).cast(),
            pending: Vec::new(),
            start: 0,
            commit_page_at: None,
            stats: Stats::default(),
        }
    }

    fn header(commit: bool) -> Vec<u8> {
        let mut h = vec![7u8; FRAME_HEADER];
        h[4..8].copy_from_slice(if commit { &[0, 0, 0, 9] } else { &[0; 4] });
        h
    }

    /// The buffering rules on their own: a transaction's frames reach the
    /// disk as one write when its commit page is written; a commit header
    /// on its own goes straight through; a failed write keeps every byte
    /// and the next attempt writes them all.
    #[test]
    fn frames_leave_as_one_write_at_the_commit_and_failures_keep_them() {
        let mut disk = Disk {
            base: ffi::sqlite3_file {
                pMethods: &DISK_METHODS,
            },
            writes: Vec::new(),
            fail: false,
        };
        let mut w = buffered(&mut disk);
        let page = vec![1u8; 4096];
        let frame = (FRAME_HEADER + page.len()) as i64;
        // Three frames, the last a commit: nothing written until its page.
        let mut at = 32;
        for i in 0..3 {
            assert_eq!(w.write(&header(i == 2), at), ffi::SQLITE_OK);
            assert_eq!(w.write(&page, at + FRAME_HEADER as i64), ffi::SQLITE_OK);
            at += frame;
            if i < 2 {
                assert!(!w.pending.is_empty());
            }
        }
        assert!(w.pending.is_empty(), "the commit page flushed the group");
        assert_eq!(
            w.stats,
            Stats {
                asked: 6,
                issued: 1,
                headers_alone: 0
            }
        );

        // A commit header rewritten on its own is written at once.
        assert_eq!(w.write(&header(true), 32 + frame), ffi::SQLITE_OK);
        assert!(w.pending.is_empty());
        assert_eq!(w.stats.headers_alone, 1);

        // The disk fails at the next commit: the bytes stay, the error is
        // reported, and the retry (the next flush) writes all of them.
        assert_eq!(w.write(&header(false), at), ffi::SQLITE_OK);
        assert_eq!(w.write(&page, at + FRAME_HEADER as i64), ffi::SQLITE_OK);
        assert_eq!(w.write(&header(true), at + frame), ffi::SQLITE_OK);
        // SAFETY: `inner` is `disk`, alive for the whole test.
        unsafe { (*w.inner.cast::<Disk>()).fail = true };
        assert_eq!(
            w.write(&page, at + frame + FRAME_HEADER as i64),
            ffi::SQLITE_IOERR_WRITE
        );
        assert_eq!(w.pending.len() as i64, 2 * frame);
        unsafe { (*w.inner.cast::<Disk>()).fail = false };
        assert_eq!(w.flush(), ffi::SQLITE_OK);
        assert!(w.pending.is_empty());
        drop(w);

        let (off, bytes) = disk.writes.last().unwrap();
        assert_eq!((*off, bytes.len() as i64), (at, 2 * frame));
        // Replaying the disk's writes gives the bytes SQLite asked for.
        let mut file = vec![0u8; (at + 2 * frame) as usize];
        for (off, bytes) in &disk.writes {
            file[*off as usize..*off as usize + bytes.len()].copy_from_slice(bytes);
        }
        assert_eq!(&file[32..32 + FRAME_HEADER], &header(false)[..]);
        assert_eq!(
            &file[(32 + frame) as usize..][..FRAME_HEADER],
            &header(true)[..]
        );
        assert_eq!(
            &file[(at + frame) as usize..][..FRAME_HEADER],
            &header(true)[..]
        );
        assert_eq!(&file[file.len() - 4096..], &page[..]);
    }

    /// The files are what the default VFS would write: the same statements
    /// give byte-identical database files after a full checkpoint.
    #[test]
    fn the_files_match_the_default_vfs() {
        let dir = tempfile::tempdir().unwrap();
        let run = |conn: &Connection| {
            conn.execute_batch(SCHEMA).unwrap();
            for g in 0..50 {
                let tx = conn.unchecked_transaction().unwrap();
                for i in 0..g {
                    tx.execute(
                        "INSERT INTO t(k, v) VALUES(?1, zeroblob(?2))",
                        rusqlite::params![format!("k{}", i % 7), 50 + i * 3],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        };
        let a = dir.path().join("a.db");
        let b = dir.path().join("b.db");
        run(&open_buffered(&a));
        run(&Connection::open(&b).unwrap());
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
}
