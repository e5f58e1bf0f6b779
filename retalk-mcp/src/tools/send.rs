//! `send {peer | group, text}`: encrypt and send one message, to a peer or
//! to every member of a room.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{find_group, resolve, saved_name};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Send an end-to-end-encrypted message: to a peer (a saved \
contact name or a fingerprint), or with group instead of peer, to every member of a room (one \
encrypted copy each). Returns a receipt once the relay has stored it; a room's receipt says \
which members it did not reach (copies kept are re-sent by `sync` and this server's upkeep). \
The message is kept in this identity's history unless the server runs with --no-save.";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The recipient: a saved contact name or a fingerprint (32 hex). Give
    /// `peer` or `group`, not both.
    #[serde(default)]
    pub peer: Option<String>,
    /// A room (its label or id, see `groups`): post to every member.
    #[serde(default)]
    pub group: Option<String>,
    /// The message text.
    pub text: String,
}

/// A member a room post did not reach.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NotReached {
    /// The member's fingerprint.
    pub fingerprint: String,
    /// Your saved name for them, if any.
    pub name: Option<String>,
    /// Why (never the text).
    pub reason: String,
    /// The encrypted copy is in the outbox: `sync` (or this server's upkeep,
    /// every minute) re-sends it. When false, no copy could be made (the
    /// member never registered, or their keys do not match): it is not sent.
    pub kept: bool,
}

/// The receipt.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Receipt {
    /// The message id (32 hex): for a peer, the same on the recipient's
    /// side; for a room, the post's shared id (`mid`, in every copy).
    pub id: String,
    /// The recipient's fingerprint (peer sends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The recipient's saved name, if any (peer sends).
    pub name: Option<String>,
    /// The room's label (room posts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The room's id (room posts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Room posts: members whose copy the relay stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<usize>,
    /// Room posts: members whose copy did not go (see `not_reached`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<usize>,
    /// Room posts: each member not reached, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_reached: Option<Vec<NotReached>>,
    /// The relay stored it for every recipient.
    pub delivered_to_relay: bool,
    /// It was kept in history.
    pub saved: bool,
    /// What to do about members not reached (room posts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Runs the tool.
pub async fn run(shared: &Shared, args: Args) -> Result<Receipt, ToolError> {
    if args.text.is_empty() {
        return Err(ToolError::bad_args("`text` is empty").hint("write something to send"));
    }
    match (&args.peer, &args.group) {
        (Some(peer), None) => to_peer(shared, peer, &args.text).await,
        (None, Some(group)) => to_group(shared, group, &args.text).await,
        (Some(_), Some(_)) => Err(ToolError::bad_args("give `peer` or `group`, not both")
            .hint("`peer` sends to one person; `group` posts to every member of a room")),
        (None, None) => Err(
            ToolError::bad_args("give `peer` (a person) or `group` (a room)")
                .hint("`contacts` lists saved peers, `groups` the rooms"),
        ),
    }
}

async fn to_peer(shared: &Shared, peer: &str, text: &str) -> Result<Receipt, ToolError> {
    let to = resolve(shared, peer)?;
    let id = shared.user.send(&to, text).await?;
    if shared.options.save {
        shared.user.history().keep_sent(&to, &id, text)?;
    }
    Ok(Receipt {
        id,
        name: saved_name(shared, &to),
        to: Some(to.to_string()),
        group: None,
        group_id: None,
        sent: None,
        failed: None,
        not_reached: None,
        delivered_to_relay: true,
        saved: shared.options.save,
        hint: None,
    })
}

async fn to_group(shared: &Shared, group: &str, text: &str) -> Result<Receipt, ToolError> {
    let g = find_group(shared, group)?;
    if g.invitation {
        return Err(ToolError::new(
            "not_a_member",
            format!(
                "'{}' is an invitation you have not accepted",
                crate::error::one_line(&g.name)
            ),
        )
        .hint("accept it with `group_join` first (only if the user wants to join this room)"));
    }
    if g.members.is_empty() {
        return Err(ToolError::new(
            "not_delivered",
            format!(
                "the room '{}' has no other members",
                crate::error::one_line(&g.name)
            ),
        )
        .hint("add members with `group_add`"));
    }
    // One relay contact first, as the CLI: a relay that is down fails here,
    // before any copy is made.
    shared.user.ensure_published().await?;
    let r = shared.user.groups().send(&g.id, text).await?;
    let kept = r.failed.iter().filter(|f| f.kept).count();
    if r.sent.is_empty() && kept == 0 {
        let why = r
            .failed
            .first()
            .map(|f| crate::error::one_line(&f.reason))
            .unwrap_or_default();
        return Err(ToolError::new(
            "not_delivered",
            format!("no member of '{}' could be sent the message ({why})", crate::error::one_line(&r.group)),
        )
        .hint("nothing was sent or kept; check the members with `groups` and `verify`, or try again later"));
    }
    if shared.options.save {
        shared.user.history().keep_group_sent(&r, text)?;
    }
    let not_reached: Vec<NotReached> = r
        .failed
        .iter()
        .map(|f| NotReached {
            fingerprint: f.member.to_string(),
            name: saved_name(shared, &f.member),
            reason: crate::error::one_line(&f.reason),
            kept: f.kept,
        })
        .collect();
    let lost = not_reached.len() - kept;
    let hint = (!not_reached.is_empty()).then(|| {
        let mut h = format!(
            "{} of {} members did not get it now.",
            not_reached.len(),
            r.sent.len() + not_reached.len()
        );
        if kept > 0 {
            h.push_str(&format!(
                " {kept} copy(ies) are kept in the outbox and re-sent by `sync` (and by this \
                 server's upkeep every minute): do not send again."
            ));
        }
        if lost > 0 {
            h.push_str(&format!(
                " {lost} member(s) could not be sent a copy (never registered on the relay, or \
                 their keys do not match): check them with `verify`, or remove them with \
                 `group_remove`."
            ));
        }
        h
    });
    Ok(Receipt {
        id: r.id,
        to: None,
        name: None,
        group: Some(r.group),
        group_id: Some(r.group_id),
        sent: Some(r.sent.len()),
        failed: Some(not_reached.len()),
        delivered_to_relay: not_reached.is_empty(),
        not_reached: Some(not_reached),
        saved: shared.options.save,
        hint,
    })
}
