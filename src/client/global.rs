//! The owner-wide contact list: contacts every identity of one person sees.
//!
//! retalk 0.3.x keeps it in `~/.retalk/contacts.db` (`RETALK_HOME`
//! relocates it), a SQLite file with one table,
//! `peers(fingerprint TEXT PRIMARY KEY, name TEXT, identity_key TEXT,
//! signing_key TEXT)`; `add` writes there when no identity is selected (or
//! with `--global`), and an identity sees the global list overlaid with its
//! own contacts. This module reads and writes the same file in the same
//! layout, so a person moving from 0.3.x keeps the list, and both programs
//! can share it.
//!
//! Nothing here is secret (ids, names and public keys) and no passphrase
//! protects it, as in 0.3.x; the file is kept owner-only (0600 in a 0700
//! folder). Unlike 0.3.x, a name is never silently taken from another
//! contact (`replace` re-points it), and recorded keys must hash to the id.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::proto::{fingerprint, UserId};

use super::contacts::{Added, Contact};
use super::ClientError;

/// File name of the global list inside the identities' home.
pub const GLOBAL_CONTACTS_FILE: &str = "contacts.db";

/// The owner-wide contact list at one path.
#[derive(Debug, Clone)]
pub struct GlobalContacts {
    path: PathBuf,
}

fn store_err(e: rusqlite::Error) -> ClientError {
    ClientError::Store(e.into())
}

impl GlobalContacts {
    /// The list in `home` (the folder holding named identities:
    /// `$RETALK_HOME`, default `~/.retalk`).
    pub fn in_home(home: &Path) -> Self {
        Self {
            path: home.join(GLOBAL_CONTACTS_FILE),
        }
    }

    /// Where the list lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file for reading, `None` when there is none yet.
    fn read(&self) -> Result<Option<Connection>, ClientError> {
        if !self.path.is_file() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(store_err)?;
        let has_table = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='peers'",
                [],
                |_| Ok(()),
            )
            .optional()
            .map_err(store_err)?
            .is_some();
        Ok(has_table.then_some(conn))
    }

    /// Opens (creating) the file for writing, owner-only.
    fn write(&self) -> Result<Connection, ClientError> {
        if let Some(dir) = self.path.parent() {
            if !dir.exists() {
                let mut b = std::fs::DirBuilder::new();
                b.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    b.mode(0o700);
                }
                b.create(dir).map_err(|e| ClientError::Store(e.into()))?;
            }
        }
        let conn = Connection::open(&self.path).map_err(store_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| ClientError::Store(e.into()))?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(store_err)?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS peers(fingerprint TEXT PRIMARY KEY, name TEXT, \
             identity_key TEXT, signing_key TEXT)",
            [],
        )
        .map_err(store_err)?;
        Ok(conn)
    }

    /// Every contact, by name (unnamed ones are named by their id, as
    /// `add ID` names them in an identity). Rows that are not well formed
    /// (a malformed id, keys that do not hash to the id) are left out: the
    /// file is shared with other programs.
    pub fn list(&self) -> Result<Vec<Contact>, ClientError> {
        let Some(conn) = self.read()? else {
            return Ok(Vec::new());
        };
        let mut stmt = conn
            .prepare("SELECT fingerprint, name, identity_key, signing_key FROM peers")
            .map_err(store_err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(store_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (fp, name, ik, sk) = row.map_err(store_err)?;
            let Ok(id) = UserId::parse(&fp, "contact") else {
                continue;
            };
            let keys = match (ik.filter(|k| !k.is_empty()), sk.filter(|k| !k.is_empty())) {
                (Some(ik), Some(sk)) if fingerprint(&ik, &sk) == id.as_str() => Some((ik, sk)),
                _ => None,
            };
            out.push(Contact {
                name: name
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| id.to_string()),
                id,
                identity_key: keys.as_ref().map(|(ik, _)| ik.clone()),
                signing_key: keys.map(|(_, sk)| sk),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The contact with this name or id.
    pub fn get(&self, name_or_id: &str) -> Result<Option<Contact>, ClientError> {
        let t = name_or_id.trim();
        Ok(self
            .list()?
            .into_iter()
            .find(|c| c.name == t || c.id.as_str() == t))
    }

    /// Saves `id` under `name` (`None`: by id alone). A name that already
    /// stands for another id is refused with [`ClientError::NameTaken`]
    /// unless `replace`; re-adding an id forgets its recorded keys (they
    /// are checked again by `verify`), as 0.3.x does.
    pub fn add(
        &self,
        name: Option<&str>,
        id: &UserId,
        replace: bool,
    ) -> Result<Added, ClientError> {
        if let Some(n) = name {
            if n.trim().is_empty() || n.chars().any(char::is_control) {
                return Err(ClientError::InvalidArgument(
                    "a contact name must be non-empty and printable".into(),
                ));
            }
        }
        let conn = self.write()?;
        let tx = conn.unchecked_transaction().map_err(store_err)?;
        let existing: Option<Option<String>> = tx
            .query_row(
                "SELECT name FROM peers WHERE fingerprint=?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(store_err)?;
        if existing.as_ref() == Some(&name.map(str::to_owned)) {
            return Ok(Added::Unchanged);
        }
        let mut outcome = Added::New;
        if let Some(n) = name {
            let holder: Option<String> = tx
                .query_row(
                    "SELECT fingerprint FROM peers WHERE name=?1 AND fingerprint<>?2",
                    params![n, id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(store_err)?;
            if let Some(other) = holder {
                if !replace {
                    return Err(ClientError::NameTaken {
                        name: n.to_owned(),
                        id: UserId::parse(&other, "contact").unwrap_or_else(|_| id.clone()),
                    });
                }
                tx.execute(
                    "UPDATE peers SET name=NULL WHERE name=?1 AND fingerprint<>?2",
                    params![n, id.as_str()],
                )
                .map_err(store_err)?;
                outcome = Added::Replaced;
            }
        }
        tx.execute(
            "INSERT INTO peers(fingerprint, name, identity_key, signing_key) \
             VALUES(?1, ?2, NULL, NULL) ON CONFLICT(fingerprint) DO UPDATE SET \
             name=excluded.name, identity_key=NULL, signing_key=NULL",
            params![id.as_str(), name],
        )
        .map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        Ok(outcome)
    }

    /// Records `id`'s keys after checking they hash to it
    /// ([`ClientError::PinMismatch`] otherwise). The contact must be saved.
    pub fn verify_keys(
        &self,
        id: &UserId,
        identity_key: &str,
        signing_key: &str,
    ) -> Result<(), ClientError> {
        super::contacts::check_keys(id, identity_key, signing_key)?;
        let conn = self.write()?;
        let n = conn
            .execute(
                "UPDATE peers SET identity_key=?1, signing_key=?2 WHERE fingerprint=?3",
                params![identity_key, signing_key, id.as_str()],
            )
            .map_err(store_err)?;
        if n == 0 {
            return Err(ClientError::UnknownPeer(id.to_string()));
        }
        Ok(())
    }

    /// Forgets the contact with this name or id; returns its name, `None`
    /// when there was none.
    pub fn remove(&self, name_or_id: &str) -> Result<Option<String>, ClientError> {
        let Some(c) = self.get(name_or_id)? else {
            return Ok(None);
        };
        self.write()?
            .execute("DELETE FROM peers WHERE fingerprint=?1", [c.id.as_str()])
            .map_err(store_err)?;
        Ok(Some(c.name))
    }
}

/// An identity's view: the global list overlaid with the identity's own
/// contacts, which win on the same id or the same name (as in 0.3.x).
pub fn overlay(own: Vec<Contact>, global: Vec<Contact>) -> Vec<Contact> {
    let mut out: Vec<Contact> = global
        .into_iter()
        .filter(|g| !own.iter().any(|o| o.id == g.id || o.name == g.name))
        .collect();
    out.extend(own);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
