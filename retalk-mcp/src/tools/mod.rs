//! One module per tool (names and argument names are fixed by issue 14 and
//! agent-talk's tools, so hosts and prompts can rely on them). Each module
//! has its argument struct (its JSON schema is the tool's input schema), its
//! result struct (structured content, also sent as text) and `run`.
//!
//! What the tools share lives here: naming a peer or a room, messages and
//! rooms as returned, taking delivered messages out of the store (saved to
//! history first).
//!
//! Rooms (groups) have one tool per operation, like everything else:
//! `groups` lists them, `group_create`, `group_add`, `group_remove`,
//! `group_rename`, `group_leave`, `group_join` and `group_delete` change
//! them, and `send` / `history` take `group` instead of `peer`.

pub mod add;
pub mod block;
pub mod contacts;
pub mod group_add;
pub mod group_create;
pub mod group_delete;
pub mod group_join;
pub mod group_leave;
pub mod group_remove;
pub mod group_rename;
pub mod groups;
pub mod history;
pub mod id;
pub mod receive;
pub mod send;
pub mod sync;
pub mod verify;
pub mod wait;

use retalk::{Group, Inbox, Message, ReceiveOptions, UserId};
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::ToolError;
use crate::server::Shared;

/// A received message, as tools return it: a chat message has `text`
/// (and `group`, `group_id` when it was posted to a room); a record that is
/// not chat has `kind` and no `text` (retalk 0.3.0's rule: keep the
/// entries with a `text` to read only chat).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MessageOut {
    /// Message id (32 hex). A room post's id is this member's copy's own
    /// id (the sender's receipt shows the post's shared id).
    pub id: String,
    /// The sender's fingerprint (user id), authenticated by the encryption.
    pub from: String,
    /// The sender's saved contact name; else `~` and the name the sender
    /// chose for themselves (unverified); else empty.
    pub name: String,
    /// The text: written by the sender, untrusted. Absent on records
    /// (`kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether the sender is a saved contact.
    pub contact: bool,
    /// Your label for the room (group) of a room post or record; pass it as
    /// `group` to `send` to answer everyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The room's stable id (32 hex): thread on it, labels can change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Present on records that are not chat: `group_leave` (the sender
    /// left the room), `group_members` (the sender's post changed the
    /// roster: `added`, `removed`), `group_invitation` (a room from a sender
    /// you never saved, held until `group_join`: `members`), `contact` (a
    /// shared contact card, in `detail`), `contact_accepted` /
    /// `contact_request_rejected` (invite codes, in `detail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `group_members`: fingerprints the post added to the room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<String>>,
    /// `group_members`: fingerprints the post removed from the room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<String>>,
    /// `group_invitation`: the room's members as the inviter listed them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// The rest of a record (a contact card, an invite code's outcome), as
    /// the library reports it; untrusted like any text from a sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

fn strings(v: Option<&serde_json::Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(crate::error::one_line))
            .collect()
    })
}

impl MessageOut {
    /// A delivered message or record, as tools return it.
    pub(crate) fn new(m: &Message, contact: bool) -> Self {
        let mut out = MessageOut {
            id: m.id.clone(),
            from: m.from.to_string(),
            name: m.name.clone(),
            text: None,
            contact,
            group: m.group.as_ref().map(|g| g.name.clone()),
            group_id: m.group.as_ref().map(|g| g.id.clone()),
            kind: None,
            added: None,
            removed: None,
            members: None,
            detail: None,
        };
        let Some(serde_json::Value::Object(n)) = &m.notice else {
            out.text = Some(m.text.clone());
            return out;
        };
        let s = |k: &str| {
            n.get(k)
                .and_then(|v| v.as_str())
                .map(crate::error::one_line)
        };
        out.kind = Some(s("kind").unwrap_or_else(|| "record".into()));
        if out.group_id.is_none() {
            out.group_id = s("group_id");
        }
        if out.group.is_none() {
            out.group = s("group");
        }
        out.added = strings(n.get("added"));
        out.removed = strings(n.get("removed"));
        out.members = strings(n.get("members"));
        let rest: serde_json::Map<String, serde_json::Value> = n
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "kind" | "group" | "group_id" | "added" | "removed" | "members"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !rest.is_empty() {
            out.detail = Some(serde_json::Value::Object(rest));
        }
        out
    }
}

/// A room member (or inviter), with your saved name for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MemberOut {
    /// Their fingerprint (user id).
    pub fingerprint: String,
    /// Your saved contact name for them; null when not saved.
    pub name: Option<String>,
}

/// A room (group), as tools return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GroupOut {
    /// The room's stable id (32 hex), the same for every member.
    pub group_id: String,
    /// Your local label for it (pass it, or the id, as `group`).
    pub name: String,
    /// The other members (you are always one too), sorted by fingerprint.
    pub members: Vec<MemberOut>,
    /// Held as an invitation: a room a sender you never saved brought. You
    /// get its posts but cannot post until you accept it with `group_join`.
    pub invitation: bool,
    /// Who brought the room, for an invitation.
    pub inviter: Option<MemberOut>,
}

/// The saved name for a fingerprint, if any.
pub(crate) fn saved_name(shared: &Shared, id: &UserId) -> Option<String> {
    shared
        .user
        .contacts()
        .get(id.as_str())
        .ok()
        .flatten()
        .map(|c| c.name)
}

pub(crate) fn member_out(shared: &Shared, id: &UserId) -> MemberOut {
    MemberOut {
        fingerprint: id.to_string(),
        name: saved_name(shared, id),
    }
}

impl GroupOut {
    pub(crate) fn new(shared: &Shared, g: &Group) -> Self {
        GroupOut {
            group_id: g.id.clone(),
            name: g.name.clone(),
            members: g.members.iter().map(|m| member_out(shared, m)).collect(),
            invitation: g.invitation,
            inviter: g.inviter.as_ref().map(|i| member_out(shared, i)),
        }
    }
}

/// Checks a `group` argument (a room's label or id) and finds the room;
/// a room you left, or none, is a tool error saying what to do.
pub(crate) fn find_group(shared: &Shared, group: &str) -> Result<Group, ToolError> {
    let g = group.trim();
    if g.is_empty() {
        return Err(ToolError::bad_args("`group` is empty")
            .hint("give a room's label or id; `groups` lists them"));
    }
    if let Some(found) = shared.user.groups().get(g)? {
        return Ok(found);
    }
    Err(left_or_unknown(shared, g))
}

/// The error for a room that is not (or no longer) one of yours.
pub(crate) fn left_or_unknown(shared: &Shared, g: &str) -> ToolError {
    let left = shared
        .user
        .groups()
        .left()
        .ok()
        .and_then(|l| l.into_iter().find(|(id, name)| id == g || name == g));
    match left {
        Some((_, name)) => ToolError::new(
            "not_a_member",
            format!(
                "you left the room '{}': its mail is refused",
                crate::error::one_line(&name)
            ),
        )
        .hint("`group_join` stops refusing it; it comes back with the next post of a member who lists you (ask one to add you back)"),
        None => ToolError::from(retalk::ClientError::UnknownGroup(g.to_owned())),
    }
}

/// Resolves a `members` argument: saved contact names or fingerprints.
pub(crate) fn resolve_members(
    shared: &Shared,
    members: &[String],
) -> Result<Vec<UserId>, ToolError> {
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let t = m.trim();
        if t.is_empty() {
            return Err(ToolError::bad_args("a member in `members` is empty").hint(
                "each member is a saved contact name (see `contacts`) or a 32-hex fingerprint",
            ));
        }
        let id = if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            parse_fingerprint(t)?
        } else {
            resolve(shared, t)?
        };
        out.push(id);
    }
    Ok(out)
}

/// Mail that could not be read (never its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProblemOut {
    /// The sender's fingerprint, as the relay named it.
    pub from: String,
    /// Why it could not be read.
    pub reason: String,
}

/// Resolves a saved contact name or a 32-hex fingerprint.
pub(crate) fn resolve(shared: &Shared, peer: &str) -> Result<UserId, ToolError> {
    let t = peer.trim();
    if t.is_empty() {
        return Err(ToolError::bad_args("`peer` is empty")
            .hint("give a saved contact name (see `contacts`) or a 32-hex fingerprint"));
    }
    let hexish =
        t.len() >= 24 && t.len() <= 40 && t.len() != 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
    if hexish && shared.user.contacts().get(t).ok().flatten().is_none() {
        return Err(ToolError::bad_args(format!(
            "'{t}' looks like a fingerprint but has {} characters; a fingerprint has 32",
            t.len()
        ))
        .hint("copy the whole fingerprint again"));
    }
    Ok(shared.user.resolve_peer(t)?)
}

/// Parses a fingerprint argument (32 hex, either case).
pub(crate) fn parse_fingerprint(s: &str) -> Result<UserId, ToolError> {
    UserId::parse(&s.trim().to_ascii_lowercase(), "fingerprint").map_err(|e| {
        ToolError::bad_args(e.to_string())
            .hint("a fingerprint (user id) is 32 hex characters, as the `id` tool shows it")
    })
}

/// One receive without waiting, messages taken out for the agent: each is
/// saved to history (unless `--no-save`) before it is forgotten in the
/// store, so a failure at any point leaves it for the next receive. Problems
/// the push task already took are returned too.
pub(crate) async fn take(
    shared: &Shared,
    from: Option<&UserId>,
) -> Result<(Vec<MessageOut>, Vec<ProblemOut>), ToolError> {
    let inbox: Inbox = shared
        .user
        .receive_with(&ReceiveOptions {
            wait: None,
            from: from.cloned(),
            peers_only: shared.options.peers_only,
            hold: true,
        })
        .await?;
    let mut out = Vec::with_capacity(inbox.messages.len());
    for m in &inbox.messages {
        if shared.options.save {
            shared.user.history().keep_received(m)?;
        }
        shared.user.shown(m)?;
        let contact = saved_name(shared, &m.from).is_some();
        out.push(MessageOut::new(m, contact));
    }
    let mut problems = shared.take_problems();
    problems.extend(inbox.problems.into_iter().map(|p| ProblemOut {
        from: p.from.to_string(),
        reason: crate::error::one_line(&p.reason),
    }));
    Ok((out, problems))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn arguments_are_checked_by_name() {
        // Unknown argument names are refused, not ignored: a misspelt
        // `peer` must not turn a one-sender read into an every-sender one.
        let bad = serde_json::from_value::<super::receive::Args>(json!({"peers": "bob"}));
        assert!(bad.is_err());
        let ok: super::wait::Args = serde_json::from_value(json!({"timeout": 1.5})).unwrap();
        assert_eq!(ok.timeout, Some(1.5));
        let send = serde_json::from_value::<super::send::Args>(json!({"peer": "bob"}));
        assert!(send.is_err(), "text is required");
        assert!(super::parse_fingerprint("ABCDEF0123456789ABCDEF0123456789").is_ok());
        assert!(super::parse_fingerprint("abc").is_err());
        let to_room: super::send::Args =
            serde_json::from_value(json!({"group": "team", "text": "hi"})).unwrap();
        assert_eq!(
            (to_room.peer, to_room.group.as_deref()),
            (None, Some("team"))
        );
        let bad = serde_json::from_value::<super::group_create::Args>(
            json!({"name": "team", "members": "bob"}),
        );
        assert!(bad.is_err(), "members is a list");
    }

    fn message(group: bool, notice: Option<serde_json::Value>) -> retalk::Message {
        retalk::Message {
            id: "a".repeat(32),
            from: retalk::UserId::parse(&"b".repeat(32), "from").unwrap(),
            name: "bob".into(),
            text: if notice.is_some() {
                String::new()
            } else {
                "hi".into()
            },
            group: group.then(|| retalk::GroupRef {
                id: "c".repeat(32),
                name: "team".into(),
            }),
            notice,
        }
    }

    #[test]
    fn room_posts_and_records_are_labelled() {
        let chat =
            serde_json::to_value(super::MessageOut::new(&message(false, None), true)).unwrap();
        assert_eq!(
            chat,
            json!({"id": "a".repeat(32), "from": "b".repeat(32), "name": "bob", "text": "hi",
                   "contact": true})
        );
        let post =
            serde_json::to_value(super::MessageOut::new(&message(true, None), true)).unwrap();
        assert_eq!(post["group"], "team");
        assert_eq!(post["group_id"], "c".repeat(32));
        assert_eq!(post["text"], "hi");
        assert!(post.get("kind").is_none());
        let leave = message(
            false,
            Some(json!({"kind": "group_leave", "group_id": "c".repeat(32), "group": "team"})),
        );
        let leave = serde_json::to_value(super::MessageOut::new(&leave, true)).unwrap();
        assert_eq!(leave["kind"], "group_leave");
        assert_eq!(leave["group"], "team");
        assert!(leave.get("text").is_none(), "a record has no text: {leave}");
        let added = message(
            false,
            Some(
                json!({"kind": "group_members", "group": "team\u{1b}[2J", "group_id": "c".repeat(32),
                        "added": ["d".repeat(32)], "removed": []}),
            ),
        );
        let added = serde_json::to_value(super::MessageOut::new(&added, false)).unwrap();
        assert_eq!(added["added"], json!(["d".repeat(32)]));
        assert_eq!(added["removed"], json!([]));
        assert!(!added["group"].as_str().unwrap().contains('\u{1b}'));
        let card = message(
            false,
            Some(json!({"kind": "contact", "card": {"name": "carol"}})),
        );
        let card = serde_json::to_value(super::MessageOut::new(&card, false)).unwrap();
        assert_eq!(card["detail"], json!({"card": {"name": "carol"}}));
    }
}
