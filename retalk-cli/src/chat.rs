//! What both views of `retalk show` share: the saved messages as chat
//! messages (who said it, which conversation), and noticing that another
//! process saved something.
//!
//! Conversations are keyed by a [`ConvKey`] so rooms (groups) can join the
//! direct conversations without changing either view.
//!
//! ## Noticing new saved rows
//!
//! Any process may save a message (`receive --save`, `send --save`,
//! RETALK_SAVE_MESSAGE=1). The store is SQLite in WAL mode, so every commit
//! by any process appends to `retalk.db-wal` (and checkpoints rewrite
//! `retalk.db`): a commit always changes the size or the modification time
//! of one of those two files. [`StoreWatch`] stats both every
//! [`TICK`] (two `stat` calls, no file opened, no SQL) and only queries the
//! store when something changed, for rows after the last position seen
//! (`seq > N`, an index range: cheap when little is new). As a backstop for
//! file systems with coarse timestamps it also queries every
//! [`BACKSTOP`] regardless. This needs no extra dependency and works the
//! same for every writer; inotify would save the ticks but not the query,
//! and SQLite's `data_version` needs a second connection held open per
//! viewer for the same answer.

use crate::backend::Identity;
use crate::error::CliError;
use retalk::Direction;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The store's SQLite file in an identity folder (the library's
/// `store::DB_FILE`).
const DB_FILE: &str = "retalk.db";

/// How often the store files are looked at.
pub const TICK: Duration = Duration::from_millis(40);
/// How often the store is queried even if its files look unchanged.
pub const BACKSTOP: Duration = Duration::from_secs(2);

/// Which conversation a message belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvKey {
    /// The two-party conversation with this user id.
    Direct(String),
    /// A room (group), by its id.
    Room(String),
}

impl ConvKey {
    /// The id the web API uses for it (a direct conversation: the peer's
    /// user id, as in 0.3.0's `fingerprint`; a room: its group id).
    pub fn id(&self) -> &str {
        match self {
            ConvKey::Direct(id) | ConvKey::Room(id) => id,
        }
    }

    /// `"direct"` or `"room"`.
    pub fn kind(&self) -> &'static str {
        match self {
            ConvKey::Direct(_) => "direct",
            ConvKey::Room(_) => "room",
        }
    }
}

/// One saved message, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMsg {
    /// Its position in the store (only grows; 0.3.0's `rowid`).
    pub rowid: i64,
    /// The conversation.
    pub conv: ConvKey,
    /// The sender's user id.
    pub sender: String,
    /// Sent by this identity.
    pub mine: bool,
    /// The sender as shown: the saved contact name, else the sender's own
    /// (unverified) name as `~name`, else the start of their id. Raw: the
    /// views neutralise it.
    pub name: String,
    /// The text, raw (the views neutralise it).
    pub text: String,
    /// When it was saved, seconds since the epoch.
    pub ts: f64,
}

/// The names this identity knows: its own and its contacts'.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// This identity's user id.
    pub my_id: String,
    /// This identity's display name, or `me`.
    pub me: String,
    /// Saved contacts: user id → name.
    pub contacts: HashMap<String, String>,
    /// Rooms: group id → (label, member count without you); rooms left
    /// keep their label with 0 members.
    pub rooms: HashMap<String, (String, usize)>,
}

impl Names {
    /// Reads them from the identity.
    pub fn load(me: &Identity) -> Result<Names, CliError> {
        let name = me.name();
        Ok(Names {
            my_id: me.user_id(),
            me: if name.is_empty() { "me".into() } else { name },
            contacts: me
                .contacts()?
                .into_iter()
                .map(|c| (c.id.to_string(), c.name))
                .collect(),
            rooms: {
                let groups = me.groups();
                let mut rooms: HashMap<String, (String, usize)> = groups
                    .left()
                    .map_err(crate::backend::client_error)?
                    .into_iter()
                    .map(|(id, name)| (id, (name, 0)))
                    .collect();
                for g in groups.list().map_err(crate::backend::client_error)? {
                    rooms.insert(g.id, (g.name, g.members.len()));
                }
                rooms
            },
        })
    }

    /// A room's label (else the start of its id).
    pub fn room(&self, gid: &str) -> String {
        self.rooms
            .get(gid)
            .map(|r| r.0.clone())
            .unwrap_or_else(|| short_id(gid))
    }

    /// How a conversation is called.
    pub fn conv(&self, c: &ConvKey) -> String {
        match c {
            ConvKey::Direct(id) => self.peer(id),
            ConvKey::Room(id) => self.room(id),
        }
    }

    /// How a conversation partner is called when no message names them.
    pub fn peer(&self, id: &str) -> String {
        self.contacts
            .get(id)
            .cloned()
            .unwrap_or_else(|| short_id(id))
    }

    /// The sender's name for a message they sent with self-chosen `claimed`.
    pub fn sender(&self, id: &str, claimed: &str) -> String {
        if let Some(n) = self.contacts.get(id) {
            return n.clone();
        }
        if claimed.is_empty() {
            short_id(id)
        } else {
            format!("~{claimed}")
        }
    }
}

/// The first 12 characters of an id and an ellipsis (as 0.3.0).
pub fn short_id(id: &str) -> String {
    let head: String = id.chars().take(12).collect();
    format!("{head}…")
}

/// Saved messages after `after`, with one peer if given.
pub fn load_after(
    me: &Identity,
    names: &Names,
    peer: Option<&str>,
    after: i64,
) -> Result<Vec<ChatMsg>, CliError> {
    Ok(me
        .history_after(peer, after)?
        .into_iter()
        // a two-party view shows only the two-party conversation
        .filter(|(_, e)| peer.is_none() || e.group.is_none())
        .map(|(rowid, e)| to_chat(names, rowid, e))
        .collect())
}

/// Saved posts of one room (its label or id) after `after`.
pub fn load_room_after(
    me: &Identity,
    names: &Names,
    group: &str,
    after: i64,
) -> Result<Vec<ChatMsg>, CliError> {
    Ok(me
        .group_history_after(group, after)?
        .into_iter()
        .map(|(rowid, e)| to_chat(names, rowid, e))
        .collect())
}

fn to_chat(names: &Names, rowid: i64, e: retalk::HistoryEntry) -> ChatMsg {
    let mine = e.direction == Direction::Out;
    let peer = e.peer.to_string();
    ChatMsg {
        rowid,
        sender: if mine {
            names.my_id.clone()
        } else {
            peer.clone()
        },
        name: if mine {
            names.me.clone()
        } else {
            names.sender(&peer, &e.name)
        },
        conv: match e.group {
            Some(g) => ConvKey::Room(g.id),
            None => ConvKey::Direct(peer),
        },
        mine,
        text: e.text,
        ts: e.ts,
    }
}

/// What identifies one state of a file (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

/// Tells when an identity's store may hold new rows (see the module
/// documentation).
#[derive(Debug)]
pub struct StoreWatch {
    files: [PathBuf; 2],
    last: [Option<Stamp>; 2],
    last_query: Instant,
}

impl StoreWatch {
    /// Watches the store in identity folder `dir`, as it is now.
    pub fn new(dir: &Path) -> StoreWatch {
        let db = dir.join(DB_FILE);
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        let files = [db, PathBuf::from(wal)];
        let last = [stamp(&files[0]), stamp(&files[1])];
        StoreWatch {
            files,
            last,
            last_query: Instant::now(),
        }
    }

    /// True if the store should be queried now: a file changed since the
    /// last call, or the backstop interval passed.
    pub fn due(&mut self) -> bool {
        let now = [stamp(&self.files[0]), stamp(&self.files[1])];
        let changed = now != self.last;
        self.last = now;
        if changed || self.last_query.elapsed() >= BACKSTOP {
            self.last_query = Instant::now();
            true
        } else {
            false
        }
    }
}

/// Untrusted text made safe for a terminal or a log line, keeping line
/// breaks: a tab becomes spaces; every other control character (escape
/// sequences, carriage returns, C1 codes, DEL), invisible direction
/// controls (which can make text read backwards) and line/paragraph
/// separators are shown escaped (`\u{1b}`), so peer text can neither
/// repaint the terminal nor reorder what is printed around it.
pub fn neutralise(s: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\t' => out.push_str("    "),
            c if is_hazard(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Control, bidi and separator characters that must not reach a terminal
/// as themselves.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralise_escapes_controls_and_bidi_but_keeps_text() {
        assert_eq!(neutralise("héllo 👋", true), "héllo 👋");
        assert_eq!(neutralise("a\nb", true), "a\nb");
        assert_eq!(neutralise("a\nb", false), "a\\nb");
        assert_eq!(neutralise("\x1b[2Jx", true), "\\u{1b}[2Jx");
        assert_eq!(neutralise("a\rb", true), "a\\rb");
        assert_eq!(neutralise("\u{202e}evil", true), "\\u{202e}evil");
        assert_eq!(neutralise("\u{2067}x\u{2069}", true), "\\u{2067}x\\u{2069}");
        assert_eq!(neutralise("\u{9b}31m", true), "\\u{9b}31m");
        assert_eq!(neutralise("a\tb", true), "a    b");
        assert!(!neutralise("\u{7f}\u{2028}", true).chars().any(is_hazard));
    }

    #[test]
    fn names_prefer_contacts_then_marked_claims_then_ids() {
        let mut n = Names {
            my_id: "m".into(),
            me: "alice".into(),
            ..Names::default()
        };
        n.contacts.insert("b".repeat(32), "bob".into());
        assert_eq!(n.sender(&"b".repeat(32), "bobby"), "bob");
        assert_eq!(n.sender(&"c".repeat(32), "carol"), "~carol");
        assert_eq!(n.sender(&"c".repeat(32), ""), "cccccccccccc…");
    }

    #[test]
    fn the_watch_notices_a_write_to_either_file() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join(DB_FILE);
        std::fs::write(&db, b"x").unwrap();
        let mut w = StoreWatch::new(tmp.path());
        assert!(!w.due(), "nothing changed");
        std::fs::write(tmp.path().join("retalk.db-wal"), b"frame").unwrap();
        assert!(w.due(), "a new WAL file");
        assert!(!w.due());
        std::fs::write(&db, b"xy").unwrap();
        assert!(w.due(), "a checkpoint");
    }
}
