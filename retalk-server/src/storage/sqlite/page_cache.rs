//! SQLite's own page cache, with one needless scan per commit taken out.
//!
//! At the end of every transaction SQLite's pager drops from its page cache
//! any page numbered above the database's size (`xTruncate`). The default
//! cache (`pcache1`) decides how to look for such pages from the highest
//! page number it has held since the last truncation: if that is far above
//! the limit, it walks its whole hash table, every page in the cache.
//!
//! The highest number is nearly always far above: when a b-tree page split
//! reorders its new pages (`balance_nonroot`), SQLite swaps two page
//! numbers through a temporary one, the number of the "pending byte" page
//! (the page holding byte 2^30 of the file, 262,145 with 4 KiB pages),
//! which no real page ever has. The page sits there for two renames and
//! leaves; `pcache1` keeps 262,145 as its highest number. Every insert into
//! the middle of an index splits pages now and then, so nearly every one of
//! the relay's group commits ended with a walk over every cached page:
//! 5.5% of the writer thread's time in the benchmark's first seconds
//! (a 12 MiB database), 1.3% of a writer with more to do half a minute and
//! 190 MiB later (docs/benchmarks.md, round 7).
//!
//! This cache is `pcache1` itself, wrapped: every call goes to it unchanged
//! but `xTruncate`, which is skipped when no page at or above the limit can
//! be in the cache. To know that, the wrapper keeps, per cache, a number at
//! least as high as every page number the cache may hold: the highest
//! number fetched or renamed to, except the temporary number, which is
//! tracked apart (whether a page holds it now). Pages `pcache1` drops on its
//! own only make that bound loose, never wrong, so a skipped truncation is
//! one that would have dropped nothing. A truncation that may drop a page
//! goes through as before.
//!
//! Installed once per process, before SQLite starts ([`install`]; SQLite
//! accepts a page cache only then). Where SQLite was already started (a
//! test process that opened a database first) the default cache stays:
//! the same answers, the old cost.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint};
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rusqlite::ffi;

/// Byte offset of SQLite's lock byte range (`PENDING_BYTE`, 2^30): the page
/// holding it is never used, and `balance_nonroot` borrows its number.
const PENDING_BYTE: u32 = 0x4000_0000;

/// `pcache1`'s methods, as SQLite had them before [`install`].
struct Inner(ffi::sqlite3_pcache_methods2);

// SAFETY: a table of function pointers and the argument SQLite passes to
// them, valid for the whole process and shared by SQLite between threads.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

static INNER: OnceLock<Inner> = OnceLock::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Truncations handed to the default cache, and truncations skipped (the
/// tests check that both happen; nothing else reads them).
#[cfg(test)]
static FORWARDED: AtomicU64 = AtomicU64::new(0);
#[cfg(test)]
static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// Truncations handed to the default cache and truncations skipped so far
/// in this process (the tests check that both happen).
#[cfg(test)]
fn truncations() -> (u64, u64) {
    (
        FORWARDED.load(Ordering::Relaxed),
        SKIPPED.load(Ordering::Relaxed),
    )
}

/// One cache: `pcache1`'s, and what the wrapper knows of its page numbers.
///
/// SQLite calls a cache's methods from one connection at a time (a cache
/// belongs to one pager, used under its connection's or shared cache's
/// mutex), so plain fields suffice.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    /// At least the highest page number the cache may hold, but for
    /// `temp`.
    bound: c_uint,
    /// The number `balance_nonroot` borrows for a swap (the pending byte's
    /// page for this page size).
    temp: c_uint,
    /// Whether a page may hold `temp` now.
    temp_held: bool,
}

/// The default cache's methods: set before ours are handed to SQLite (see
/// [`install`]), so present whenever SQLite calls them. Each method below
/// still treats a missing one as "nothing to forward" rather than panic
/// inside a C callback.
fn inner() -> Option<&'static ffi::sqlite3_pcache_methods2> {
    INNER.get().map(|i| &i.0)
}

/// Installs the cache for every SQLite connection of the process. True if
/// it is in use: installed now or by an earlier call. False if SQLite had
/// already started (the default cache stays; nothing else changes).
///
/// Call before anything opens a database: the relay's `main` does, first
/// thing, and [`crate::storage::sqlite::wal_buffer::register`] does too.
pub fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        let mut default = ffi::sqlite3_pcache_methods2 {
            iVersion: 0,
            pArg: std::ptr::null_mut(),
            xInit: None,
            xShutdown: None,
            xCreate: None,
            xCachesize: None,
            xPagecount: None,
            xFetch: None,
            xUnpin: None,
            xRekey: None,
            xTruncate: None,
            xDestroy: None,
            xShrink: None,
        };
        // SAFETY: SQLITE_CONFIG_GETPCACHE2 takes a pointer to a methods
        // struct and fills it in (the default cache if none was set).
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_GETPCACHE2,
                &mut default as *mut ffi::sqlite3_pcache_methods2,
            )
        };
        if rc != ffi::SQLITE_OK || default.iVersion < 1 {
            return false;
        }
        let complete = default.xCreate.is_some()
            && default.xFetch.is_some()
            && default.xUnpin.is_some()
            && default.xRekey.is_some()
            && default.xTruncate.is_some()
            && default.xDestroy.is_some();
        if !complete {
            return false;
        }
        let methods = ffi::sqlite3_pcache_methods2 {
            iVersion: default.iVersion,
            pArg: default.pArg,
            xInit: default.xInit,
            xShutdown: default.xShutdown,
            xCreate: Some(create),
            xCachesize: Some(cachesize),
            xPagecount: Some(pagecount),
            xFetch: Some(fetch),
            xUnpin: Some(unpin),
            xRekey: Some(rekey),
            xTruncate: Some(truncate),
            xDestroy: Some(destroy),
            xShrink: Some(shrink),
        };
        if INNER.set(Inner(default)).is_err() {
            return false;
        }
        // SAFETY: SQLITE_CONFIG_PCACHE2 copies the struct; it fails with
        // SQLITE_MISUSE (changing nothing) once SQLite has started.
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_PCACHE2,
                &methods as *const ffi::sqlite3_pcache_methods2,
            )
        };
        rc == ffi::SQLITE_OK
    })
}

/// The wrapper of a cache SQLite hands back to us.
///
/// # Safety
/// `p` was returned by [`create`] and not yet passed to [`destroy`].
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    // SAFETY: per the contract, `p` is a live `Box<Cache>` of ours, used by
    // one connection at a time.
    unsafe { &mut *p.cast::<Cache>() }
}

unsafe extern "C" fn create(
    sz_page: c_int,
    sz_extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let Some(create) = inner().and_then(|m| m.xCreate) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the default cache's own xCreate, with SQLite's arguments.
    let p = unsafe { create(sz_page, sz_extra, purgeable) };
    if p.is_null() {
        return p;
    }
    let temp = match u32::try_from(sz_page) {
        Ok(size) if size > 0 => PENDING_BYTE / size + 1,
        _ => 0,
    };
    Box::into_raw(Box::new(Cache {
        inner: p,
        bound: 0,
        temp,
        temp_held: false,
    }))
    .cast()
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, n: c_int) {
    // SAFETY: `p` is ours (SQLite's contract); the call is forwarded as is.
    unsafe {
        if let Some(f) = inner().and_then(|m| m.xCachesize) {
            f(cache(p).inner, n);
        }
    }
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    // SAFETY: as in `cachesize`.
    unsafe {
        inner()
            .and_then(|m| m.xPagecount)
            .map_or(0, |f| f(cache(p).inner))
    }
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create_flag: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    // SAFETY: as in `cachesize`.
    let c = unsafe { cache(p) };
    let Some(f) = inner().and_then(|m| m.xFetch) else {
        return std::ptr::null_mut();
    };
    // SAFETY: forwarded as is.
    let page = unsafe { f(c.inner, key, create_flag) };
    if !page.is_null() {
        if key == c.temp {
            c.temp_held = true;
        } else if key > c.bound {
            c.bound = key;
        }
    }
    page
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    // SAFETY: as in `cachesize`.
    unsafe {
        if let Some(f) = inner().and_then(|m| m.xUnpin) {
            f(cache(p).inner, page, discard);
        }
    }
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    // SAFETY: as in `cachesize`.
    let c = unsafe { cache(p) };
    if new == c.temp {
        c.temp_held = true;
    } else {
        if new > c.bound {
            c.bound = new;
        }
        if old == c.temp {
            c.temp_held = false;
        }
    }
    if let Some(f) = inner().and_then(|m| m.xRekey) {
        // SAFETY: forwarded as is.
        unsafe { f(c.inner, page, old, new) };
    }
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    // SAFETY: as in `cachesize`.
    let c = unsafe { cache(p) };
    let may_drop = c.bound >= limit || (c.temp_held && c.temp >= limit);
    if !may_drop {
        // No page numbered `limit` or above is in the cache: the default
        // cache would drop nothing (but might walk all its pages to find
        // that out).
        #[cfg(test)]
        SKIPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Some(f) = inner().and_then(|m| m.xTruncate) {
        // SAFETY: forwarded as is.
        unsafe { f(c.inner, limit) };
    }
    #[cfg(test)]
    FORWARDED.fetch_add(1, Ordering::Relaxed);
    // Every page at or above `limit` is gone.
    if limit > 0 {
        c.bound = c.bound.min(limit - 1);
    } else {
        c.bound = 0;
    }
    if c.temp >= limit {
        c.temp_held = false;
    }
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: `p` is ours and SQLite never uses it again after this call;
    // the box is freed after the inner cache.
    unsafe {
        let c = Box::from_raw(p.cast::<Cache>());
        if let Some(f) = inner().and_then(|m| m.xDestroy) {
            f(c.inner);
        }
    }
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: as in `cachesize`.
    unsafe {
        if let Some(f) = inner().and_then(|m| m.xShrink) {
            f(cache(p).inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::process::Command;

    /// Set in the child process that runs a test body (see [`alone`]).
    const CHILD: &str = "RETALK_PAGE_CACHE_TEST_CHILD";

    /// The cache can only be installed before SQLite starts, and other
    /// tests of this binary start it at any time: so a test body runs in a
    /// process of its own (this test binary again, filtered to the one
    /// test). True in that child, where the body is to run; in the parent
    /// it runs the child, fails the test if the child did not pass exactly
    /// one test, and returns false.
    fn alone(test: &str) -> bool {
        if std::env::var_os(CHILD).is_some() {
            return true;
        }
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let name = format!("{module}::{test}");
        let out = Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child run of {name} failed:\n{stdout}\n{stderr}"
        );
        false
    }

    /// The methods SQLite calls: ours, read back before SQLite starts.
    fn installed_methods() -> ffi::sqlite3_pcache_methods2 {
        assert!(install(), "SQLite started before the cache was installed");
        // SAFETY: as in `install`; SQLite has not started yet.
        let mut m: ffi::sqlite3_pcache_methods2 = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_GETPCACHE2,
                &mut m as *mut ffi::sqlite3_pcache_methods2,
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        // SAFETY: starts SQLite (and with it the default cache's xInit).
        assert_eq!(unsafe { ffi::sqlite3_initialize() }, ffi::SQLITE_OK);
        m
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u32) -> u32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) % u64::from(n)) as u32
        }
    }

    /// Random fetches, renames (among them `balance_nonroot`'s swap through
    /// the borrowed number), discards and truncations on the installed
    /// cache, against a model of which page numbers it holds: after every
    /// step exactly the model's pages are in the cache. A skipped
    /// truncation that should have dropped a page fails here.
    #[test]
    fn the_cache_holds_exactly_what_the_default_one_would() {
        if !alone("the_cache_holds_exactly_what_the_default_one_would") {
            return;
        }
        let m = installed_methods();
        let (create, fetch, unpin, rekey, trunc, destroy, cachesize) = (
            m.xCreate.unwrap(),
            m.xFetch.unwrap(),
            m.xUnpin.unwrap(),
            m.xRekey.unwrap(),
            m.xTruncate.unwrap(),
            m.xDestroy.unwrap(),
            m.xCachesize.unwrap(),
        );
        const SIZE: c_int = 4096;
        let temp = PENDING_BYTE / SIZE as u32 + 1;
        let keys: Vec<u32> = (1..=120).chain([temp]).collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut swaps, mut drops) = (0, 0);
        for _round in 0..20 {
            // SAFETY: the default cache's contract: pages are used only
            // between their fetch and their discard or truncation, on the
            // one cache they came from, which is destroyed last.
            unsafe {
                let cache = create(SIZE, 64, 1);
                assert!(!cache.is_null());
                cachesize(cache, 10_000);
                let mut model: BTreeSet<u32> = BTreeSet::new();
                let held = |model: &BTreeSet<u32>| {
                    for &k in &keys {
                        let page = fetch(cache, k, 0);
                        assert_eq!(!page.is_null(), model.contains(&k), "page {k}");
                    }
                };
                for _ in 0..400 {
                    match rng.below(10) {
                        0..=3 => {
                            let k = 1 + rng.below(100);
                            if !fetch(cache, k, 2).is_null() {
                                model.insert(k);
                            }
                        }
                        4 | 5 => {
                            // The split's swap of two pages through `temp`.
                            let present: Vec<u32> = model.iter().copied().collect();
                            if present.len() >= 2 {
                                let a = present[rng.below(present.len() as u32) as usize];
                                let b = present[rng.below(present.len() as u32) as usize];
                                if a != b && !model.contains(&temp) {
                                    let pa = fetch(cache, a, 0);
                                    let pb = fetch(cache, b, 0);
                                    rekey(cache, pa, a, temp);
                                    rekey(cache, pb, b, a);
                                    rekey(cache, pa, temp, b);
                                    swaps += 1;
                                }
                            }
                        }
                        6 => {
                            // A rename to a new number (possibly above any
                            // fetched so far), or to `temp` left there.
                            if let Some(&a) = model.iter().nth(rng.below(8) as usize) {
                                let to = if rng.below(4) == 0 {
                                    temp
                                } else {
                                    1 + rng.below(120)
                                };
                                if !model.contains(&to) {
                                    rekey(cache, fetch(cache, a, 0), a, to);
                                    model.remove(&a);
                                    model.insert(to);
                                }
                            }
                        }
                        7 => {
                            if let Some(&a) = model.iter().nth(rng.below(8) as usize) {
                                unpin(cache, fetch(cache, a, 0), 1);
                                model.remove(&a);
                            }
                        }
                        _ => {
                            let limit = 1 + rng.below(125);
                            let before = model.len();
                            trunc(cache, limit);
                            model.retain(|&k| k < limit);
                            drops += before - model.len();
                        }
                    }
                    held(&model);
                }
                destroy(cache);
            }
        }
        assert!(
            swaps > 100 && drops > 100,
            "{swaps} swaps, {drops} pages dropped"
        );
        let (forwarded, skipped) = truncations();
        assert!(
            forwarded > 0 && skipped > 0,
            "{forwarded} forwarded, {skipped} skipped"
        );
    }

    /// A relay database written through the cache: messages to many
    /// recipients (index page splits, so swaps through the borrowed page
    /// number), transactions rolled back after growing the file (their
    /// truncations must go through), and a second connection reading it.
    /// The file stays sound and holds exactly what was committed; and the
    /// commits' truncations were skipped (the point of the cache).
    #[test]
    fn a_database_written_through_it_holds_what_was_committed() {
        if !alone("a_database_written_through_it_holds_what_was_committed") {
            return;
        }
        assert!(install(), "SQLite started before the cache was installed");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        let conn = crate::store::open(&path).unwrap();
        // An index with an entry per message at its recipient's place (as
        // the relay's file had until issue 16's round 8): inserts all over
        // it split pages, and splits swap through the borrowed number.
        conn.execute_batch("CREATE INDEX test_by_recipient ON messages(recipient, id)")
            .unwrap();
        let mut rng = Rng(42);
        let mut committed: u64 = 0;
        let mut sum: u64 = 0;
        for round in 0..300 {
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            let mut added = (0, 0);
            for _ in 0..20 {
                let to = format!("recipient-{:04}", rng.below(500));
                let body = "x".repeat(100 + rng.below(900) as usize);
                conn.execute(
                    "INSERT INTO messages(ts, sender, recipient, mtype, body) \
                     VALUES(1.0, 's', ?1, 1, ?2)",
                    rusqlite::params![to, body],
                )
                .unwrap();
                added.0 += 1;
                added.1 += body.len() as u64;
            }
            if round % 7 == 3 {
                conn.execute_batch("ROLLBACK").unwrap();
            } else {
                conn.execute_batch("COMMIT").unwrap();
                committed += added.0;
                sum += added.1;
            }
        }
        let (forwarded, skipped) = truncations();
        assert!(skipped > 100, "{forwarded} forwarded, {skipped} skipped");
        assert!(forwarded > 0, "rolled-back growth must be truncated");
        let other = rusqlite::Connection::open(&path).unwrap();
        for c in [&conn, &other] {
            let ok: String = c
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
            let (n, bytes): (u64, u64) = c
                .query_row(
                    "SELECT COUNT(*), SUM(length(body)) FROM messages",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((n, bytes), (committed, sum));
            let indexed: u64 = c
                .query_row(
                    "SELECT COUNT(*) FROM messages INDEXED BY test_by_recipient \
                     WHERE recipient >= ''",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(indexed, committed);
        }
    }
}
