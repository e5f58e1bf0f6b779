//! `user.history()`: messages kept on request (`send --save`,
//! `receive --save`), sealed at rest with the store key, which is derived
//! from the passphrase by Argon2id with a per-store salt (retalk 0.3.0 seals
//! them with an unsalted SHA-256 of the passphrase).

use crate::proto::UserId;
use crate::store::HistoryRow;

use super::{ClientError, Message, User};

/// Which way a kept message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received.
    In,
    /// Sent.
    Out,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// A kept message.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    /// The message id.
    pub id: String,
    /// The other party: the sender of a received message, the recipient of
    /// a sent one.
    pub peer: UserId,
    /// Received or sent.
    pub direction: Direction,
    /// The name shown for the sender when it was kept.
    pub name: String,
    /// The text.
    pub text: String,
    /// When it was kept, seconds since the epoch.
    pub ts: f64,
    /// The room of a group message (its id, and its label when kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<super::GroupRef>,
}

/// The kept messages of one identity; see [`User::history`].
pub struct History<'u> {
    user: &'u User,
}

impl User {
    /// This identity's kept messages.
    pub fn history(&self) -> History<'_> {
        History { user: self }
    }
}

impl History<'_> {
    /// Keeps a received message (notices are not kept).
    pub fn keep_received(&self, m: &Message) -> Result<(), ClientError> {
        if !m.is_chat() {
            return Ok(());
        }
        let group = m.group.as_ref().map(|g| (g.id.clone(), g.name.clone()));
        self.keep(&m.from, &m.id, Direction::In, &m.name, &m.text, group)
    }

    /// Keeps a sent message.
    pub fn keep_sent(&self, to: &UserId, id: &str, text: &str) -> Result<(), ClientError> {
        let name = self.user.name().to_owned();
        self.keep(to, id, Direction::Out, &name, text, None)
    }

    /// Keeps a group post (one entry for all the copies, as 0.3.0: the
    /// entry's peer is the room's id).
    pub fn keep_group_sent(&self, sent: &super::GroupSend, text: &str) -> Result<(), ClientError> {
        let name = self.user.name().to_owned();
        let room = UserId::parse(&sent.group_id, "group id")
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        self.keep(
            &room,
            &sent.id,
            Direction::Out,
            &name,
            text,
            Some((sent.group_id.clone(), sent.group.clone())),
        )
    }

    /// Kept messages of one room (by label or id) after position `after`
    /// (0 for all), as [`after`](Self::after).
    pub fn group_after(
        &self,
        group: &str,
        after: i64,
    ) -> Result<Vec<(i64, HistoryEntry)>, ClientError> {
        let gid = match self.user.groups().get(group)? {
            Some(g) => g.id,
            None => self
                .user
                .groups()
                .left()?
                .into_iter()
                .find(|(id, name)| id == group || name == group)
                .map(|(id, _)| id)
                .ok_or_else(|| ClientError::UnknownGroup(group.to_owned()))?,
        };
        let rows = self
            .user
            .store
            .read(|t| t.history_group_after(&gid, after))?;
        Ok(rows
            .into_iter()
            .filter_map(|(seq, r)| Some((seq, entry(r)?)))
            .collect())
    }

    fn keep(
        &self,
        peer: &UserId,
        id: &str,
        direction: Direction,
        name: &str,
        text: &str,
        group: Option<(String, String)>,
    ) -> Result<(), ClientError> {
        let row = HistoryRow {
            msg_id: id.to_owned(),
            peer: peer.clone(),
            direction: direction.as_str().to_owned(),
            name: name.to_owned(),
            text: text.to_owned(),
            ts: 0.0,
            group,
        };
        Ok(self.user.store.tx(|t| t.history_insert(&row))?)
    }

    /// Kept messages in the order they were kept; only those with `peer`
    /// when given.
    pub fn list(&self, peer: Option<&UserId>) -> Result<Vec<HistoryEntry>, ClientError> {
        let rows = self
            .user
            .store
            .read(|t| t.history(peer.map(UserId::as_str)))?;
        Ok(rows.into_iter().filter_map(entry).collect())
    }

    /// Kept messages saved after position `after` (0 for all), oldest
    /// first, each with its position (a number that only grows: the next
    /// call passes the last one seen); only those with `peer` when given.
    /// Cheap when nothing is new: what a live view polls.
    pub fn after(
        &self,
        peer: Option<&UserId>,
        after: i64,
    ) -> Result<Vec<(i64, HistoryEntry)>, ClientError> {
        let rows = self
            .user
            .store
            .read(|t| t.history_after(peer.map(UserId::as_str), after))?;
        Ok(rows
            .into_iter()
            .filter_map(|(seq, r)| Some((seq, entry(r)?)))
            .collect())
    }
}

fn entry(r: HistoryRow) -> Option<HistoryEntry> {
    Some(HistoryEntry {
        peer: r.peer,
        direction: if r.direction == "out" {
            Direction::Out
        } else {
            Direction::In
        },
        id: r.msg_id,
        name: r.name,
        text: r.text,
        ts: r.ts,
        group: r.group.map(|(id, name)| super::GroupRef { id, name }),
    })
}
