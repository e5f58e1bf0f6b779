//! `user.groups()`: rooms with client-side fan-out, wire-compatible with
//! retalk 0.3.x, and the one implementation of their roster rules (the CLI
//! only calls these).
//!
//! A room is a 32-hex id, a local label and a roster. A post is one
//! pairwise-encrypted copy per member, each carrying the room (`group`:
//! id, the sender's label, the sender's roster including the sender) and a
//! shared `mid`; the relay sees ordinary messages only. Leaving sends each
//! member a `group_leave`.
//!
//! Where 0.3.0 lets any envelope with a known id replace the roster, here:
//! * only current members change the roster, and a change is a
//!   *transition* one member made: someone that member newly lists is
//!   added, someone that member listed before and no longer lists is
//!   removed. A roster from a member who simply has not heard of a recent
//!   addition removes nobody, so rosters converge instead of "last
//!   delivered wins";
//! * a member removed, or who left, never lists themselves back: their
//!   later copies for the room are refused (signed nack), and only another
//!   member's new listing (or your own `add`) re-admits them;
//! * every addition is reported (a `group_members` notice on receive);
//! * a room from a sender you never saved is held as an invitation until
//!   you `join` it (the `group_adopt` setting: `contacts`, the default;
//!   `anyone`, 0.3.0's behaviour; `nobody`, hold every new room).
//!
//! Rooms you left stay refused (their mail is nacked) until `join`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::proto::{new_id, Envelope, GroupTag, UserId};
use crate::store::{GroupRow, Tx};

use super::{ClientError, User};

/// The roster cap when no relay ever said (`GET /info` `max_group_size`).
pub const DEFAULT_GROUP_CAP: usize = 100;

/// The setting that says which new rooms are adopted at once.
pub const ADOPT_SETTING: &str = "group_adopt";

/// Which rooms from others are adopted at once (the rest are held as
/// invitations until [`Groups::join`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdoptPolicy {
    /// Rooms from saved contacts (the default).
    #[default]
    Contacts,
    /// Rooms from anyone (retalk 0.3.0's behaviour).
    Anyone,
    /// No room: every new room is an invitation.
    Nobody,
}

impl AdoptPolicy {
    /// Parses the setting's value.
    pub fn parse(s: &str) -> Option<AdoptPolicy> {
        match s {
            "contacts" => Some(AdoptPolicy::Contacts),
            "anyone" => Some(AdoptPolicy::Anyone),
            "nobody" => Some(AdoptPolicy::Nobody),
            _ => None,
        }
    }

    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            AdoptPolicy::Contacts => "contacts",
            AdoptPolicy::Anyone => "anyone",
            AdoptPolicy::Nobody => "nobody",
        }
    }
}

/// A room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The room's id (32 hex), the same for every member.
    pub id: String,
    /// The local label.
    pub name: String,
    /// The other members (without this identity), sorted.
    pub members: Vec<UserId>,
    /// Held as an invitation (not adopted yet; see [`Groups::join`]).
    pub invitation: bool,
    /// Who brought the room, for an invitation.
    pub inviter: Option<UserId>,
}

/// The result of a group post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSend {
    /// The post's id, shared by every copy (`mid`).
    pub id: String,
    /// The local label.
    pub group: String,
    /// The room's id.
    pub group_id: String,
    /// Members whose copy the relay stored.
    pub sent: Vec<UserId>,
    /// Members whose copy did not go, with why; `kept` when the copy is in
    /// the outbox and will be re-sent.
    pub failed: Vec<FailedCopy>,
}

/// A member a group post did not reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedCopy {
    /// The member.
    pub member: UserId,
    /// Why (never message text).
    pub reason: String,
    /// The encrypted copy is in the outbox and will be re-sent
    /// (`maintain`, `flush_outbox`).
    pub kept: bool,
}

/// The result of [`Groups::leave`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Left {
    /// The room's id.
    pub id: String,
    /// Its label.
    pub name: String,
    /// Members told.
    pub told: Vec<UserId>,
    /// Members not told, with why (their copies are refused anyway).
    pub failed: Vec<(UserId, String)>,
}

/// What [`Groups::join`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// An invitation was accepted: the room is active.
    Accepted(Group),
    /// A room left earlier is no longer refused; it comes back with the
    /// next post of a member who lists you.
    Rejoined {
        /// The room's id.
        id: String,
        /// Its label.
        name: String,
    },
}

/// The rooms of one identity; see [`User::groups`].
pub struct Groups<'u> {
    user: &'u User,
}

impl User {
    /// This identity's rooms.
    pub fn groups(&self) -> Groups<'_> {
        Groups { user: self }
    }

    /// The relay's advisory roster cap (`GET /info` `max_group_size`,
    /// counting this identity), remembered in the store; the remembered
    /// value (else 100) when the relay cannot be asked.
    pub async fn group_cap(&self) -> usize {
        let asked = match self.relay() {
            Ok(url) => self.transport.info(url).await.ok().flatten(),
            Err(_) => None,
        };
        if let Some(cap) = asked.map(|i| i.max_group_size).filter(|c| *c > 0) {
            let _ = self.store.tx(|t| t.set_meta("group_cap", &cap.to_string()));
            return usize::try_from(cap).unwrap_or(usize::MAX);
        }
        self.cached_group_cap()
    }

    fn cached_group_cap(&self) -> usize {
        self.store
            .read(|t| t.meta("group_cap"))
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_GROUP_CAP)
    }

    pub(crate) fn adopt_policy(&self) -> AdoptPolicy {
        self.setting(ADOPT_SETTING)
            .ok()
            .flatten()
            .and_then(|v| AdoptPolicy::parse(&v))
            .unwrap_or_default()
    }
}

fn to_group(g: GroupRow) -> Group {
    Group {
        invitation: g.is_invitation(),
        members: g.members.into_iter().collect(),
        inviter: g.inviter,
        id: g.gid,
        name: g.name,
    }
}

/// A label is a local handle: printable, not empty, not a user id (so
/// `send --group` and `--peer` never read the same word two ways).
fn check_label(name: &str) -> Result<(), ClientError> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(ClientError::InvalidArgument(
            "a group name must be non-empty and printable".into(),
        ));
    }
    if UserId::parse(&name.to_ascii_lowercase(), "group").is_ok() {
        return Err(ClientError::InvalidArgument(
            "group name looks like a fingerprint: pick a human name".into(),
        ));
    }
    Ok(())
}

/// A label for a room from elsewhere: the sender's, cleaned, else the id's
/// first 8 characters; made unique with `-2`, `-3`... (0.3.0's rule).
fn free_label(t: &Tx<'_>, gid: &str, suggested: &str) -> Result<String, ClientError> {
    let clean: String = super::error::sanitize(suggested)
        .trim()
        .chars()
        .take(64)
        .collect();
    let base = if check_label(&clean).is_ok() {
        clean
    } else {
        gid.chars().take(8).collect()
    };
    let mut name = base.clone();
    let mut n = 1;
    while t.group_by_ref(&name)?.is_some_and(|g| g.gid != gid) {
        n += 1;
        name = format!("{base}-{n}");
    }
    Ok(name)
}

impl Groups<'_> {
    fn me(&self) -> UserId {
        self.user.user_id().clone()
    }

    fn require(&self, r: &str) -> Result<GroupRow, ClientError> {
        self.user
            .store
            .read(|t| t.group_by_ref(r))?
            .ok_or_else(|| ClientError::UnknownGroup(r.to_owned()))
    }

    fn check_cap(&self, n_with_me: usize, cap: usize) -> Result<(), ClientError> {
        if n_with_me > cap {
            return Err(ClientError::InvalidArgument(format!(
                "group too large: {n_with_me} users, and this relay allows {cap} \
                 (its GET /info max_group_size)"
            )));
        }
        Ok(())
    }

    /// Creates a room labelled `name` with these members (this identity is
    /// always a member too). Refuses a taken label and a roster over the
    /// relay's cap.
    pub async fn create(&self, name: &str, members: &[UserId]) -> Result<Group, ClientError> {
        check_label(name)?;
        let me = self.me();
        let members: BTreeSet<UserId> = members.iter().filter(|m| **m != me).cloned().collect();
        if members.is_empty() {
            return Err(ClientError::InvalidArgument(
                "a group needs at least one member besides you".into(),
            ));
        }
        let cap = self.user.group_cap().await;
        self.check_cap(members.len() + 1, cap)?;
        let row = GroupRow {
            gid: new_id(),
            name: name.to_owned(),
            members,
            removed: BTreeSet::new(),
            seen: BTreeMap::new(),
            state: "active".into(),
            inviter: None,
        };
        self.user.store.tx(|t| {
            if t.group_by_ref(name)?.is_some() {
                return Err(ClientError::InvalidArgument(format!(
                    "a group named '{name}' already exists"
                )));
            }
            t.group_save(&row)?;
            Ok(())
        })?;
        Ok(to_group(row))
    }

    /// Every room (invitations included), by label.
    pub fn list(&self) -> Result<Vec<Group>, ClientError> {
        Ok(self
            .user
            .store
            .read(|t| t.groups())?
            .into_iter()
            .map(to_group)
            .collect())
    }

    /// One room by label or id.
    pub fn get(&self, r: &str) -> Result<Option<Group>, ClientError> {
        Ok(self.user.store.read(|t| t.group_by_ref(r))?.map(to_group))
    }

    /// Rooms left (refused until [`join`](Self::join)): (id, label).
    pub fn left(&self) -> Result<Vec<(String, String)>, ClientError> {
        Ok(self.user.store.read(|t| t.left_groups())?)
    }

    /// Adds members; returns the room and how many were new. A member
    /// removed earlier is re-admitted (you decide). The new roster reaches
    /// the others with your next post.
    pub async fn add(&self, r: &str, members: &[UserId]) -> Result<(Group, usize), ClientError> {
        let mut g = self.require(r)?;
        let me = self.me();
        let new: Vec<UserId> = members
            .iter()
            .filter(|m| **m != me && !g.members.contains(*m))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let cap = self.user.group_cap().await;
        self.check_cap(g.members.len() + new.len() + 1, cap)?;
        for m in &new {
            g.removed.remove(m);
            g.members.insert(m.clone());
        }
        self.user.store.tx(|t| t.group_save(&g))?;
        Ok((to_group(g), new.len()))
    }

    /// Removes members; returns the room and how many were removed. They
    /// stop getting your copies now; the others learn it with your next
    /// post (and do not let them list themselves back).
    pub fn remove(&self, r: &str, members: &[UserId]) -> Result<(Group, usize), ClientError> {
        let mut g = self.require(r)?;
        let mut n = 0;
        for m in members {
            if g.members.remove(m) {
                g.removed.insert(m.clone());
                g.seen.remove(m);
                n += 1;
            }
        }
        if n > 0 {
            self.user.store.tx(|t| t.group_save(&g))?;
        }
        Ok((to_group(g), n))
    }

    /// Changes the local label (only yours; the id and the others' labels
    /// stay).
    pub fn rename(&self, r: &str, new_name: &str) -> Result<Group, ClientError> {
        check_label(new_name)?;
        let mut g = self.require(r)?;
        self.user.store.tx(|t| {
            if t.group_by_ref(new_name)?.is_some_and(|o| o.gid != g.gid) {
                return Err(ClientError::InvalidArgument(format!(
                    "a group named '{new_name}' already exists"
                )));
            }
            g.name = new_name.to_owned();
            t.group_save(&g)?;
            Ok(())
        })?;
        Ok(to_group(g))
    }

    /// Forgets a room locally (the others keep theirs; a later post from a
    /// member brings it back, as a new room).
    pub fn delete(&self, r: &str) -> Result<Group, ClientError> {
        let g = self.require(r)?;
        self.user.store.tx(|t| t.group_delete(&g.gid))?;
        Ok(to_group(g))
    }

    /// Leaves a room: tells every member (`group_leave`, best effort), then
    /// forgets it and refuses its mail from now on (until `join`).
    pub async fn leave(&self, r: &str) -> Result<Left, ClientError> {
        let g = self.require(r)?;
        let mut told = Vec::new();
        let mut failed = Vec::new();
        if !g.is_invitation() {
            self.user.relay()?;
            let _lock = self.user.lock().await?;
            for to in g.members.iter().cloned() {
                let env = Envelope::GroupLeave {
                    id: new_id(),
                    group_id: g.gid.clone(),
                    name: None,
                };
                match self.user.send_envelope_locked(&to, &env, true).await {
                    Ok(_) => told.push(to),
                    Err(e) => failed.push((to, super::error::sanitize(&e.to_string()))),
                }
            }
        }
        self.user.store.tx(|t| {
            t.left_insert(&g.gid, &g.name)?;
            t.group_delete(&g.gid)?;
            Ok::<_, ClientError>(())
        })?;
        Ok(Left {
            id: g.gid,
            name: g.name,
            told,
            failed,
        })
    }

    /// Accepts an invitation (the room becomes active), or stops refusing
    /// a room left earlier.
    pub fn join(&self, r: &str) -> Result<Joined, ClientError> {
        self.user.store.tx(|t| {
            if let Some(mut g) = t.group_by_ref(r)? {
                if g.is_invitation() {
                    g.state = "active".into();
                    t.group_save(&g)?;
                    return Ok(Joined::Accepted(to_group(g)));
                }
                return Err(ClientError::InvalidArgument(format!(
                    "you are already in '{}'",
                    g.name
                )));
            }
            match t.left_delete(r)? {
                Some((id, name)) => Ok(Joined::Rejoined { id, name }),
                None => Err(ClientError::UnknownGroup(r.to_owned())),
            }
        })
    }

    /// Posts `text` to every member: one pairwise-encrypted copy each, all
    /// sharing one id. A member who cannot be reached never blocks the
    /// others; a copy encrypted but not uploaded stays in the outbox for
    /// re-sending (see [`GroupSend::failed`]).
    pub async fn send(&self, r: &str, text: &str) -> Result<GroupSend, ClientError> {
        let g = self.require(r)?;
        if g.is_invitation() {
            return Err(ClientError::InvalidArgument(format!(
                "'{}' is an invitation: accept it with `group join` first",
                g.name
            )));
        }
        self.user.relay()?;
        let me = self.me();
        let mut roster: BTreeSet<UserId> = g.members.clone();
        roster.insert(me.clone());
        let tag = GroupTag {
            id: g.gid.clone(),
            name: g.name.clone(),
            members: roster.iter().map(|m| m.as_str().to_owned()).collect(),
        };
        let mid = new_id();
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        let _lock = self.user.lock().await?;
        for to in g.members.iter().cloned() {
            let env = Envelope::GroupMsg {
                id: new_id(),
                text: text.to_owned(),
                name: self.user.name.clone(),
                group: tag.clone(),
                mid: mid.clone(),
            };
            match self.user.send_envelope_locked(&to, &env, true).await {
                Ok(_) => sent.push(to),
                Err(ClientError::KeptForResend { reason, .. }) => failed.push(FailedCopy {
                    member: to,
                    reason,
                    kept: true,
                }),
                Err(e) => failed.push(FailedCopy {
                    member: to,
                    reason: super::error::sanitize(&e.to_string()),
                    kept: false,
                }),
            }
        }
        Ok(GroupSend {
            id: mid,
            group: g.name,
            group_id: g.gid,
            sent,
            failed,
        })
    }
}

/// What receiving a group post decided.
pub(crate) enum PostOutcome {
    /// Show it, tagged with this local label; with these notices.
    Deliver {
        label: String,
        notices: Vec<serde_json::Value>,
    },
    /// Show it as a direct message from its sender, not in the room: they
    /// are not (yet) on our roster, so their text must not appear as the
    /// room's.
    Untagged,
    /// Refuse it (signed nack): a room we left, or a member removed or gone.
    Refuse,
}

/// Context for the roster rules.
pub(crate) struct PostContext<'a> {
    pub me: &'a UserId,
    pub sender: &'a UserId,
    pub sender_saved: bool,
    pub policy: AdoptPolicy,
    pub cap: usize,
}

fn ids(v: &BTreeSet<UserId>) -> Vec<String> {
    v.iter().map(|m| m.as_str().to_owned()).collect()
}

/// The roster rules for one received post (see the module docs), applied
/// inside the receive transaction.
pub(crate) fn on_post(
    t: &Tx<'_>,
    cx: &PostContext<'_>,
    tag: &GroupTag,
) -> Result<PostOutcome, ClientError> {
    // Room ids are 32 hex in every client we know of (0.3.x: uuid4().hex);
    // anything else is not taken as a room (its text is still shown, as
    // the sender's).
    if tag.id.len() != 32 || !tag.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(PostOutcome::Untagged);
    }
    if t.has_left(&tag.id)? {
        return Ok(PostOutcome::Refuse);
    }
    let roster: BTreeSet<UserId> = tag
        .members
        .iter()
        .filter_map(|m| UserId::parse(m, "member").ok())
        .collect();
    let Some(mut g) = t.group(&tag.id)? else {
        // A new room.
        let mut members: BTreeSet<UserId> = roster.clone();
        members.insert(cx.sender.clone());
        members.remove(cx.me);
        let label = free_label(t, &tag.id, &tag.name)?;
        if members.len() + 1 > cx.cap {
            // oversized foreign roster: shown, not adopted (as 0.3.0)
            return Ok(PostOutcome::Deliver {
                label,
                notices: vec![],
            });
        }
        let adopt = match cx.policy {
            AdoptPolicy::Anyone => true,
            AdoptPolicy::Contacts => cx.sender_saved,
            AdoptPolicy::Nobody => false,
        };
        let mut seen = BTreeMap::new();
        seen.insert(cx.sender.clone(), roster);
        let row = GroupRow {
            gid: tag.id.clone(),
            name: label.clone(),
            members: members.clone(),
            removed: BTreeSet::new(),
            seen,
            state: if adopt { "active" } else { "invited" }.into(),
            inviter: Some(cx.sender.clone()),
        };
        t.group_save(&row)?;
        // A room a contact brought is adopted as 0.3.x does, silently (the
        // post itself shows it); a held one is announced.
        let notices = if adopt {
            vec![]
        } else {
            vec![
                serde_json::json!({"kind": "group_invitation", "group": label,
                "group_id": tag.id, "members": ids(&members)}),
            ]
        };
        return Ok(PostOutcome::Deliver { label, notices });
    };
    if g.removed.contains(cx.sender) {
        return Ok(PostOutcome::Refuse);
    }
    let label = g.name.clone();
    let is_member = g.members.contains(cx.sender);
    let inviter_of_invitation = g.is_invitation() && g.inviter.as_ref() == Some(cx.sender);
    if !is_member && !inviter_of_invitation {
        // Not (yet) a member here: their roster is not taken, and their
        // text is not shown as the room's (anyone who learned the room's id
        // could write into it otherwise); it still reaches us, as theirs.
        return Ok(PostOutcome::Untagged);
    }
    let prev = g.seen.get(cx.sender).cloned();
    let mut added = BTreeSet::new();
    let mut removed = BTreeSet::new();
    for m in roster.difference(prev.as_ref().unwrap_or(&BTreeSet::new())) {
        if m == cx.me || m == cx.sender || g.members.contains(m) {
            continue;
        }
        // someone removed comes back only through another member's new
        // listing (a transition that member made, not a stale roster)
        if g.removed.contains(m) && prev.is_none() {
            continue;
        }
        if g.members.len() + added.len() + 2 > cx.cap {
            break;
        }
        added.insert(m.clone());
    }
    if let Some(prev) = &prev {
        for m in prev.difference(&roster) {
            if m == cx.sender {
                continue;
            }
            if m == cx.me || g.members.contains(m) {
                removed.insert(m.clone());
            }
        }
    }
    for m in &added {
        g.removed.remove(m);
        g.members.insert(m.clone());
    }
    for m in &removed {
        if m != cx.me {
            g.members.remove(m);
            g.removed.insert(m.clone());
            g.seen.remove(m);
        }
    }
    g.seen.insert(cx.sender.clone(), roster);
    t.group_save(&g)?;
    // Additions are announced (with any removals of the same post); a
    // removal alone is not (0.3.x shows none, and the roster says it).
    let notices = if added.is_empty() {
        vec![]
    } else {
        vec![
            serde_json::json!({"kind": "group_members", "group": label, "group_id": g.gid,
            "added": ids(&added), "removed": ids(&removed)}),
        ]
    };
    Ok(PostOutcome::Deliver { label, notices })
}

/// A member left `gid`: they stop getting copies, and their later copies
/// for it are refused. Returns the local label, if the room is known.
pub(crate) fn on_leave(
    t: &Tx<'_>,
    sender: &UserId,
    gid: &str,
) -> Result<Option<String>, ClientError> {
    let Some(mut g) = t.group(gid)? else {
        return Ok(None);
    };
    if g.members.remove(sender) {
        g.removed.insert(sender.clone());
        g.seen.remove(sender);
        t.group_save(&g)?;
    }
    Ok(Some(g.name))
}
