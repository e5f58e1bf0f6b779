//! The `meta` table: format version, key-derivation parameters, public ids,
//! name, relay URL, and the encrypted Olm account.

use rusqlite::{params, OptionalExtension};
use vodozemac::olm::{Account, AccountPickle};

use super::{StoreError, Tx};

impl Tx<'_> {
    /// A `meta` value.
    pub fn meta(&self, k: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k=?1", [k], |r| r.get(0))
            .optional()?)
    }

    /// Sets a `meta` value.
    pub fn set_meta(&self, k: &str, v: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
            params![k, v],
        )?;
        Ok(())
    }

    /// The Olm account.
    pub fn account(&self) -> Result<Account, StoreError> {
        let blob = self
            .meta("account")?
            .ok_or_else(|| StoreError::Corrupt("no account".into()))?;
        let pickle = AccountPickle::from_encrypted(&blob, self.keys.pickle_key())
            .map_err(|_| StoreError::Corrupt("the account does not decrypt".into()))?;
        Ok(Account::from_pickle(pickle))
    }

    /// Saves the Olm account.
    pub fn save_account(&self, account: &Account) -> Result<(), StoreError> {
        self.set_meta("account", &account.pickle().encrypt(self.keys.pickle_key()))
    }

    /// Removes a `meta` value.
    pub fn delete_meta(&self, k: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM meta WHERE k=?1", [k])?;
        Ok(())
    }
}
