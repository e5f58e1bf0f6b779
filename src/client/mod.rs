//! The client library: [`User`], one identity with its encrypted local store,
//! talking to an untrusted relay.
//!
//! Modules, one concern each:
//! * `user`: creating and opening identities, key publication and upkeep;
//! * `transport`: signed HTTP calls to the relay;
//! * `sessions`: checking served keys against ids and pins, choosing and
//!   creating Olm sessions;
//! * `outbox`: sending, the outbox of unacknowledged messages, re-sending,
//!   and sending owed acknowledgements;
//! * `receive`: the crash-safe receive pipeline;
//! * `peers`: saved peer names and pins;
//! * `contacts`, `history`, `blocklist`: the sub-handles `user.contacts()`,
//!   `user.history()`, `user.blocklist()` (one table each);
//! * `claims`: which reader a held message belongs to;
//! * `watch`: waiting for mail without taking it (a held peek);
//! * `failpoint`: test-only crash injection (the `failpoints` feature only).
//!
//! All methods are `async` (tokio). A synchronous program drives them with a
//! current-thread runtime:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let me = rt.block_on(retalk::User::open("./alice".as_ref(), "passphrase"))?;
//! let bob = me.resolve_peer("bob")?;
//! rt.block_on(me.send(&bob, "hello"))?;
//! for m in rt.block_on(me.receive())? {
//!     println!("{} {}: {}", m.from, m.name, m.text);
//! }
//! # Ok(()) }
//! ```

mod blocklist;
mod claims;
mod contacts;
mod error;
mod failpoint;
mod global;
mod groups;
mod history;
mod invites;
mod outbox;
mod peers;
mod receive;
mod sessions;
mod transport;
mod user;
mod watch;

use std::time::Duration;

use serde::Serialize;

use crate::proto::UserId;

pub use blocklist::Blocklist;
pub(crate) use contacts::stage_card;
pub use contacts::{AddOptions, Added, Contact, Contacts, SharedCard};
pub use error::ClientError;
pub use global::{overlay as overlay_contacts, GlobalContacts, GLOBAL_CONTACTS_FILE};
pub use groups::{
    AdoptPolicy, FailedCopy, Group, GroupSend, Groups, Joined, Left, ADOPT_SETTING,
    DEFAULT_GROUP_CAP,
};
pub use history::{Direction, History, HistoryEntry};
pub use invites::{Invite, Invites, NewInvite, DEFAULT_EXPIRY_DAYS};
pub use receive::ReceiveOptions;
pub use transport::OlmSigner;
pub use user::{CreateOptions, User};

/// A decrypted chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// The message id the sender chose (32 hex); the same on both sides.
    pub id: String,
    /// The sender, as authenticated by the Olm session.
    pub from: UserId,
    /// How to show the sender: the saved peer name, else `~` followed by the
    /// sender's self-chosen (unverified) name, else empty.
    pub name: String,
    /// The text (empty for a notice).
    pub text: String,
    /// The room of a group post: its id and your label for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupRef>,
    /// A record that is not chat, as JSON with a `kind`: `group_leave`
    /// (`group_id`, `group`), `group_members` (`group`, `group_id`,
    /// `added`, `removed`), `group_invitation` (`group`, `group_id`,
    /// `members`), `contact_accepted` (`code`, `name`, `card`) or
    /// `contact_request_rejected` (`reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<serde_json::Value>,
}

impl Message {
    /// A chat message (not a notice).
    pub fn is_chat(&self) -> bool {
        self.notice.is_none()
    }
}

/// Which room a group post belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRef {
    /// The room's id.
    pub id: String,
    /// Your label for it.
    pub name: String,
}

/// Mail that could not be read. The rest of the mailbox is unaffected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryProblem {
    /// The sender as the relay named it.
    pub from: UserId,
    /// Why it could not be read (never contains message content).
    pub reason: String,
}

/// The result of one receive: messages and problems, each in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inbox {
    /// Messages decrypted, each returned exactly once.
    pub messages: Vec<Message>,
    /// Mail that could not be decrypted or verified.
    pub problems: Vec<DeliveryProblem>,
}

impl Inbox {
    /// Neither messages nor problems.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.problems.is_empty()
    }
}

/// What [`User::maintain`] keeps healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintainOptions {
    /// Publish a new batch when fewer one-time keys than this are left.
    pub min_otks: usize,
    /// How many one-time keys a batch holds.
    pub batch: usize,
    /// Rotate the fallback key once it is older than this.
    pub fallback_max_age: Duration,
    /// Re-send outbox messages not acknowledged this long after their last
    /// sending.
    pub resend_after: Duration,
    /// Forget the hashes of messages received longer ago than this (checked
    /// at most once a day). They exist to recognise a re-sent copy, which
    /// stops once the sender has our acknowledgement; a copy arriving after
    /// its hash is forgotten no longer decrypts and is refused, and the
    /// sender's client then starts a fresh session.
    pub forget_processed_after: Duration,
}

impl Default for MaintainOptions {
    fn default() -> Self {
        MaintainOptions {
            min_otks: 20,
            batch: 100,
            fallback_max_age: Duration::from_secs(24 * 3600),
            resend_after: Duration::from_secs(120),
            forget_processed_after: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// What [`User::maintain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MaintainReport {
    /// Unclaimed one-time keys the relay reported before any publishing.
    pub unclaimed: u64,
    /// The relay had forgotten this user (no fallback key): keys were
    /// published again and the whole outbox re-sent.
    pub republished: bool,
    /// A batch of one-time keys was published.
    pub replenished: bool,
    /// A new fallback key was published.
    pub fallback_rotated: bool,
    /// Outbox messages re-sent.
    pub resent: usize,
    /// Owed acknowledgements delivered.
    pub acks_sent: usize,
    /// Hashes of old received messages forgotten (see
    /// [`MaintainOptions::forget_processed_after`]).
    pub processed_forgotten: usize,
}

/// A saved peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// The local name.
    pub name: String,
    /// The peer's user id.
    pub id: UserId,
    /// The pinned Curve25519 identity key, if any.
    pub pin: Option<String>,
}
