//! [`User`]: one identity, its store and its relay. Creating and opening,
//! key publication, self-healing and periodic upkeep live here; sending,
//! receiving and peers have their own modules.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use vodozemac::olm::Account;

use crate::proto::tools::{CountKeys, KeyCounts, PublishKeys};
use crate::proto::{IdentityKey, SigningKey, Tool, UserId, WireError};
use crate::store::{self, KdfParams, NewIdentity, Store, StoreLock};

use super::transport::{Transport, REQUEST_TIMEOUT};
use super::{ClientError, MaintainOptions, MaintainReport};

/// How many one-time keys a relay that forgot us gets.
const HEAL_BATCH: usize = 100;

/// Options for [`User::create_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Argon2id cost of the passphrase. The default (19 MiB, 2 passes, 2
    /// lanes) is the floor for real identities; lower values exist for
    /// tests.
    pub kdf: KdfParams,
}

/// One identity: its keys and sessions (in an encrypted store folder) and
/// the relay it talks to.
///
/// Every operation takes the store's exclusive file lock for its whole
/// duration, so any number of tasks and processes may use one identity at
/// once; `User` is `Send + Sync` and can be shared in an `Arc`.
pub struct User {
    pub(crate) store: Store,
    pub(crate) transport: Transport,
    user_id: UserId,
    pub(crate) name: String,
    saved_relay: Option<String>,
    relay_override: Option<String>,
    /// `GET /info`'s `max_wait` for the relay last asked.
    wait_cache: Mutex<Option<(String, Option<u64>)>>,
    /// The account as it was when the store was opened, for what never
    /// changes: signing requests, the identity keys, starting outbound
    /// sessions. Unpickling an account costs milliseconds (its one-time
    /// keys' public halves are recomputed), which used to be paid several
    /// times per command; anything that changes the account (new keys, an
    /// inbound session) loads it fresh under the store lock instead.
    signer: Account,
    /// The owner-wide contact list, when the caller set one
    /// ([`set_global_contacts`](Self::set_global_contacts)).
    pub(crate) global: Option<super::GlobalContacts>,
    /// Who this instance is when it holds delivered messages (`hold`):
    /// other instances, in this process or another, leave them alone while
    /// this one is alive (see `claims`).
    pub(crate) claimant: String,
    /// Held from the first hold receive on (see `claims`).
    pub(crate) claim_lock: Mutex<Option<super::claims::ClaimLock>>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("user_id", &self.user_id)
            .field("dir", &self.store.dir())
            .field("relay", &self.relay_url())
            .finish_non_exhaustive()
    }
}

fn check_url(url: &str) -> Result<(), ClientError> {
    let ok = reqwest::Url::parse(url)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ClientError::InvalidArgument(format!(
            "relay URL {url:?} is not an http:// or https:// URL"
        )))
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, ClientError> + Send + 'static,
) -> Result<R, ClientError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClientError::Store(store::StoreError::Io(format!("worker failed: {e}"))))?
}

impl User {
    /// Creates a new identity store in `dir` (created with mode 0700 if
    /// missing) and a fresh Olm account. Refuses if an identity is there.
    /// Nothing is sent to a relay until [`publish`](Self::publish) or
    /// [`ensure_published`](Self::ensure_published).
    pub async fn create(
        dir: &Path,
        passphrase: &str,
        name: &str,
        relay_url: Option<&str>,
    ) -> Result<User, ClientError> {
        Self::create_with(dir, passphrase, name, relay_url, CreateOptions::default()).await
    }

    /// [`create`](Self::create) with explicit options.
    pub async fn create_with(
        dir: &Path,
        passphrase: &str,
        name: &str,
        relay_url: Option<&str>,
        options: CreateOptions,
    ) -> Result<User, ClientError> {
        if let Some(url) = relay_url {
            check_url(url)?;
        }
        if name.chars().any(char::is_control) {
            return Err(ClientError::InvalidArgument(
                "the name must not contain control characters".into(),
            ));
        }
        let (dir_o, pass, name_o, url_o) = (
            dir.to_owned(),
            zeroize::Zeroizing::new(passphrase.to_owned()),
            name.to_owned(),
            relay_url.map(str::to_owned),
        );
        let (store, account) = blocking(move || {
            Store::create(
                &dir_o,
                NewIdentity {
                    passphrase: &pass,
                    name: &name_o,
                    relay_url: url_o.as_deref(),
                    kdf: options.kdf,
                },
            )
            .map_err(ClientError::from)
        })
        .await?;
        Self::from_parts(
            store,
            account,
            name.to_owned(),
            relay_url.map(str::to_owned),
        )
    }

    /// Opens an existing identity. A wrong passphrase gives
    /// [`ClientError::WrongPassphrase`] and changes nothing; an empty folder
    /// gives [`ClientError::NoIdentity`].
    ///
    /// A folder made by the Python reference (retalk 0.0.1 `store.db`) is
    /// taken over on its first open, with its secret as the passphrase (see
    /// [`crate::migrate`]).
    pub async fn open(dir: &Path, passphrase: &str) -> Result<User, ClientError> {
        let (dir_o, pass) = (
            dir.to_owned(),
            zeroize::Zeroizing::new(passphrase.to_owned()),
        );
        let store = blocking(move || {
            crate::migrate::import_if_needed(&dir_o, &pass)?;
            Store::open(&dir_o, &pass).map_err(ClientError::from)
        })
        .await?;
        let (account, name, relay) = store.tx(|t| {
            Ok::<_, ClientError>((
                t.account()?,
                t.meta("name")?.unwrap_or_default(),
                t.meta("relay_url")?,
            ))
        })?;
        Self::from_parts(store, account, name, relay)
    }

    fn from_parts(
        store: Store,
        account: Account,
        name: String,
        saved_relay: Option<String>,
    ) -> Result<User, ClientError> {
        let identity_key = account.curve25519_key().to_base64();
        let signing_key = account.ed25519_key().to_base64();
        let user_id = UserId::parse(
            &crate::proto::fingerprint(&identity_key, &signing_key),
            "user id",
        )
        .map_err(|e| ClientError::Crypto(e.to_string()))?;
        Ok(User {
            store,
            transport: Transport::new()?,
            user_id,
            name,
            saved_relay,
            relay_override: None,
            wait_cache: Mutex::new(None),
            signer: account,
            claimant: hex::encode(rand::random::<[u8; 8]>()),
            claim_lock: Mutex::new(None),
            global: None,
        })
    }

    /// Lets this identity also see an owner-wide contact list: a name
    /// there is never given to a redeemer of an invite code.
    pub fn set_global_contacts(&mut self, global: Option<super::GlobalContacts>) {
        self.global = global;
    }

    /// Whether `dir` holds an identity (this crate's, or a Python 0.0.1
    /// reference folder awaiting import).
    pub fn exists(dir: &Path) -> bool {
        Store::exists(dir)
    }

    /// Uses `url` as the relay for the rest of this session (the saved URL
    /// is not changed).
    pub fn set_relay_url(&mut self, url: &str) {
        self.relay_override = Some(url.to_owned());
    }

    /// Saves `url` as this identity's relay (`retalk config --relay`), for
    /// this session and later ones; `None` forgets the saved relay.
    pub fn save_relay_url(&mut self, url: Option<&str>) -> Result<(), ClientError> {
        self.store.tx(|t| match url {
            Some(u) => t.set_meta("relay_url", u),
            None => t.delete_meta("relay_url"),
        })?;
        self.saved_relay = url.map(str::to_owned);
        Ok(())
    }

    /// The relay URL saved with the identity (not this session's override).
    pub fn saved_relay_url(&self) -> Option<&str> {
        self.saved_relay.as_deref()
    }

    /// Sends `key` as `Authorization: Bearer` on every relay request of
    /// this session (relays that require an API key).
    pub fn set_api_key(&mut self, key: Option<&str>) {
        self.transport.api_key = key.map(str::to_owned);
    }

    /// [`setting`](Self::setting) of the identity in `dir`, read without
    /// opening it (no passphrase): how a command learns, before it asks for
    /// a passphrase, that the identity was made with none. Also reads the
    /// settings of a Python 0.3.x folder not yet taken over.
    pub fn recorded_setting(dir: &Path, key: &str) -> Option<String> {
        Store::public_setting(dir, key)
    }

    /// A public setting saved with the identity (`meta`), such as the
    /// CLI's receive policy or API key. Not for secrets.
    pub fn setting(&self, key: &str) -> Result<Option<String>, ClientError> {
        Ok(self.store.read(|t| t.meta(&format!("setting:{key}")))?)
    }

    /// Saves (or with `None` removes) a public setting; see
    /// [`setting`](Self::setting).
    pub fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), ClientError> {
        let k = format!("setting:{key}");
        Ok(self.store.tx(|t| match value {
            Some(v) => t.set_meta(&k, v),
            None => t.delete_meta(&k),
        })?)
    }

    /// When the identity was created, seconds since the epoch.
    pub fn created_at(&self) -> Result<Option<f64>, ClientError> {
        Ok(self
            .store
            .tx(|t| t.meta("created"))?
            .and_then(|v| v.parse().ok()))
    }

    /// The relay in use: the one set for this session, else the one saved
    /// at creation.
    pub fn relay_url(&self) -> Option<&str> {
        self.relay_override
            .as_deref()
            .or(self.saved_relay.as_deref())
    }

    /// This user's id: address and key pin, to be shared out of band.
    pub fn user_id(&self) -> UserId {
        self.user_id.clone()
    }

    /// The Curve25519 identity key, unpadded base64 (what peers may pin).
    pub fn identity_key(&self) -> String {
        self.signer.curve25519_key().to_base64()
    }

    /// The Ed25519 signing key, unpadded base64.
    pub fn signing_key(&self) -> String {
        self.signer.ed25519_key().to_base64()
    }

    /// The self-chosen name sent (encrypted) with every message.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The identity folder.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    pub(crate) fn relay(&self) -> Result<&str, ClientError> {
        let url = self.relay_url().ok_or(ClientError::NoRelay)?;
        check_url(url)?;
        Ok(url)
    }

    pub(crate) async fn lock(&self) -> Result<StoreLock, ClientError> {
        store::lock::lock(self.store.dir())
            .await
            .map_err(|e| ClientError::Store(e.into()))
    }

    pub(crate) fn account(&self) -> Result<Account, ClientError> {
        Ok(self.store.tx(|t| t.account())?)
    }

    /// The account for signing and for what else only reads its identity
    /// (see the field); [`Self::account`] when it is to change.
    pub(crate) fn signer(&self) -> &Account {
        &self.signer
    }

    /// Calls a tool on the relay, signed with this identity.
    pub(crate) async fn call<T: Tool>(
        &self,
        account: &Account,
        tool: &T,
    ) -> Result<T::Response, ClientError> {
        self.transport
            .call(self.relay()?, account, tool, REQUEST_TIMEOUT)
            .await
    }

    pub(crate) async fn call_with_timeout<T: Tool>(
        &self,
        account: &Account,
        tool: &T,
        timeout: Duration,
    ) -> Result<T::Response, ClientError> {
        self.transport
            .call(self.relay()?, account, tool, timeout)
            .await
    }

    /// Publishes the identity and signing keys, `n` new one-time keys and,
    /// on first publication or when `rotate_fallback` is set, a new
    /// fallback key. This is the whole of registration: a relay creates the
    /// mailbox on first publication. vodozemac keeps the previous fallback
    /// key for one rotation, so messages in flight to it still decrypt.
    pub async fn publish(&self, n: usize, rotate_fallback: bool) -> Result<(), ClientError> {
        let _lock = self.lock().await?;
        self.publish_locked(n, rotate_fallback).await
    }

    pub(crate) async fn publish_locked(
        &self,
        n: usize,
        rotate_fallback: bool,
    ) -> Result<(), ClientError> {
        let mut account = self.account()?;
        let first = self.store.tx(|t| t.meta("fallback_ts"))?.is_none();
        if n > 0 {
            account.generate_one_time_keys(n);
        }
        if rotate_fallback || first {
            account.generate_fallback_key();
        }
        // Saved before the upload: if the process dies after the relay
        // stored the keys, we still hold their private halves (unpublished
        // keys are simply offered again next time).
        self.store.tx(|t| t.save_account(&account))?;
        let bad = |e: crate::proto::IdError| ClientError::Crypto(e.to_string());
        let mut one_time_keys = account
            .one_time_keys()
            .into_iter()
            .map(|(id, k)| {
                Ok((
                    id.to_base64(),
                    IdentityKey::parse(&k.to_base64(), "otk").map_err(bad)?,
                ))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        one_time_keys.sort_by(|a, b| a.0.cmp(&b.0));
        let fallback_key = account
            .fallback_key()
            .into_iter()
            .next()
            .map(|(id, k)| {
                Ok::<_, ClientError>((
                    id.to_base64(),
                    IdentityKey::parse(&k.to_base64(), "fallback").map_err(bad)?,
                ))
            })
            .transpose()?;
        let fallback_published = fallback_key.is_some();
        let req = PublishKeys {
            identity_key: IdentityKey::parse(&self.identity_key(), "identity_key").map_err(bad)?,
            signing_key: SigningKey::parse(&self.signing_key(), "signing_key").map_err(bad)?,
            one_time_keys,
            fallback_key,
        };
        self.call(&account, &req).await?;
        account.mark_keys_as_published();
        self.store.tx(|t| {
            t.save_account(&account)?;
            if fallback_published {
                t.set_meta("fallback_ts", &store::now().to_string())?;
            }
            Ok::<_, ClientError>(())
        })
    }

    async fn count_keys(&self, account: &Account) -> Result<KeyCounts, ClientError> {
        match self.call(account, &CountKeys).await {
            Ok(c) => Ok(c),
            // A relay that never heard of us may say so instead of zero.
            Err(ClientError::Relay {
                error: WireError::NotFound(_),
                ..
            }) => Ok(KeyCounts {
                unclaimed: 0,
                has_fallback: false,
            }),
            Err(e) => Err(e),
        }
    }

    /// Makes sure the relay knows this user. A relay that lost its database,
    /// or a new relay, has no fallback key on file: then this publishes a
    /// fresh batch of keys and re-uploads every unacknowledged outbox message
    /// (peers drop copies they already have). Returns whether it published.
    /// Costs one request when nothing is needed; commands call it first so
    /// the identity heals by itself.
    pub async fn ensure_published(&self) -> Result<bool, ClientError> {
        let _lock = self.lock().await?;
        let counts = self.count_keys(self.signer()).await?;
        if counts.has_fallback {
            return Ok(false);
        }
        self.publish_locked(HEAL_BATCH, true).await?;
        self.flush_locked(Duration::ZERO).await?;
        Ok(true)
    }

    /// Keeps the relay-side key material healthy and delivery moving:
    /// publishes `batch` one-time keys when fewer than `min_otks` are left,
    /// rotates the fallback key when older than `fallback_max_age` (or gone:
    /// the relay forgot us, so everything is republished and the whole
    /// outbox re-sent), re-sends outbox messages unacknowledged for
    /// `resend_after`, and delivers acknowledgements still owed. Does nothing
    /// but one `count_keys` when all is well. Call it periodically.
    pub async fn maintain(&self, opts: MaintainOptions) -> Result<MaintainReport, ClientError> {
        let _lock = self.lock().await?;
        let counts = self.count_keys(self.signer()).await?;
        let forgotten = !counts.has_fallback;
        let replenished = (counts.unclaimed as usize) < opts.min_otks;
        let stale = match self.store.tx(|t| t.meta("fallback_ts"))? {
            None => true,
            Some(ts) => {
                let ts: f64 = ts.parse().unwrap_or(0.0);
                store::now() - ts > opts.fallback_max_age.as_secs_f64()
            }
        };
        let fallback_rotated = forgotten || stale;
        if replenished || fallback_rotated {
            self.publish_locked(if replenished { opts.batch } else { 0 }, fallback_rotated)
                .await?;
        }
        let resend_after = if forgotten {
            Duration::ZERO
        } else {
            opts.resend_after
        };
        let resent = self.flush_locked(resend_after).await?;
        let acks_sent = self.send_acks_locked().await?;
        let processed_forgotten = self.forget_processed_locked(opts.forget_processed_after)?;
        Ok(MaintainReport {
            unclaimed: counts.unclaimed,
            republished: forgotten,
            replenished,
            fallback_rotated,
            resent,
            acks_sent,
            processed_forgotten,
        })
    }

    /// Drops `processed` rows older than `older_than`, at most once a day
    /// (the delete scans the table; maintenance may run every minute).
    fn forget_processed_locked(&self, older_than: Duration) -> Result<usize, ClientError> {
        const EVERY_SECS: f64 = 24.0 * 3600.0;
        let now = store::now();
        Ok(self.store.tx(|t| {
            let last = t
                .meta("processed_pruned_ts")?
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NEG_INFINITY);
            if (0.0..EVERY_SECS).contains(&(now - last)) {
                return Ok(0);
            }
            let n = t.processed_prune(now - older_than.as_secs_f64())?;
            t.set_meta("processed_pruned_ts", &now.to_string())?;
            Ok::<_, crate::store::StoreError>(n)
        })?)
    }

    /// Whether the relay can hold a `read_messages` open until mail arrives
    /// (it advertises `max_wait` in `GET /info`). Asked once per relay URL
    /// and remembered.
    pub async fn relay_supports_wait(&self) -> Result<bool, ClientError> {
        Ok(self.relay_max_wait().await?.is_some())
    }

    pub(crate) async fn relay_max_wait(&self) -> Result<Option<u64>, ClientError> {
        let url = self.relay()?.to_owned();
        if let Some((u, w)) = self
            .wait_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if *u == url {
                return Ok(*w);
            }
        }
        let max_wait = self
            .transport
            .info(&url)
            .await?
            .and_then(|i| i.max_wait)
            .filter(|w| *w > 0);
        *self.wait_cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((url, max_wait));
        Ok(max_wait)
    }
}
