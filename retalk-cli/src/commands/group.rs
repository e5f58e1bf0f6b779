//! `retalk group ACTION [NAME] [MEMBERS]`: rooms with client-side fan-out
//! (retalk 0.3.x compatible); the rules live in the library's
//! `user.groups()`.

use super::Ctx;
use crate::backend::client_error;
use crate::error::CliError;
use crate::output::{self, json_line, Lines, Ordered};
use serde_json::Value;

/// What `retalk group` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Create a room: NAME --members A,B
    Create,
    /// List rooms (and invitations)
    List,
    /// Show a room's members
    Members,
    /// Add members: NAME A,B
    Add,
    /// Remove members: NAME A,B
    Remove,
    /// Change your label: OLD NEW
    Rename,
    /// Leave a room (members are told; its mail is refused from now on)
    Leave,
    /// Accept an invitation, or stop refusing a room you left
    Join,
    /// Forget a room locally
    Delete,
    /// Which rooms are adopted at once: contacts, anyone or nobody
    Policy,
}

/// `retalk group`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// create, list, members, add, remove, rename, leave, join, delete, policy
    #[arg(value_enum, value_name = "ACTION")]
    pub action: Action,

    /// The room's label (or id); every action except list
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Comma-separated saved names or 32-hex ids (add, remove; create also
    /// takes --members); the new label for rename
    #[arg(value_name = "MEMBERS")]
    pub members: Option<String>,

    /// Comma-separated members, e.g. --members bob,carol
    #[arg(long = "members", value_name = "LIST")]
    pub members_flag: Option<String>,

    /// With list or members: one JSON object per line
    #[arg(long)]
    pub json: bool,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
A room is a local roster: `retalk send --group NAME TEXT` encrypts one
pairwise copy per member, so the relay sees ordinary messages and never the
roster (it does see how many copies you send, their sizes and times). Each
copy carries the room's id and your roster inside the encryption, so the
members' clients (ours or retalk 0.3.x) adopt the room and can answer all.

Rosters: only current members change a roster; a member who is removed, or
who leaves, cannot list themselves back (their copies are refused); an
addition shows on `receive` as a `group_members` record. A room from a sender
you never saved is held as an invitation (`group_invitation`) until you
`group join` it; `group policy anyone` adopts every room at once (0.3.0's
behaviour), `group policy nobody` holds them all.

Examples:
  retalk group create team --members bob,carol   {\"group_id\", \"name\", \"members\"}
  retalk group list [--json]
  retalk group members team [--json]
  retalk group add team dave
  retalk group remove team carol
  retalk group rename team work-team      your label only
  retalk send --group team \"standup in 5\"
  retalk group leave team                 members are told; its mail is refused
  retalk group join team                  accept an invitation, or undo a leave
  retalk group delete team                forget it locally
  retalk group policy [contacts|anyone|nobody]

",
    crate::common_help!()
);

fn split(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs `retalk group`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let name = args.name.as_deref();
    let need_name = || {
        name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
            CliError::usage(format!(
                "group {} needs a NAME",
                format!("{:?}", args.action).to_lowercase()
            ))
            .hint("see `retalk group list`")
        })
    };
    if args.action != Action::List && args.action != Action::Policy {
        need_name()?;
    }
    let opened = ctx.open(false).await?;
    let me = &opened.identity;
    let groups = me.groups();
    let resolve = |list: Vec<String>| -> Result<Vec<retalk::UserId>, CliError> {
        list.iter()
            .map(|r| {
                let id = me.resolve_peer(r).map_err(|e| {
                    CliError::usage(format!(
                        "unknown member '{}': use a saved contact name or a 32-hex fingerprint",
                        output::one_line(r)
                    ))
                    .hint(e.hint.unwrap_or_default())
                })?;
                retalk::UserId::parse(&id, "member").map_err(|e| CliError::usage(e.to_string()))
            })
            .collect()
    };
    let mut out = Lines::stdout();
    match args.action {
        Action::Create => {
            let n = need_name()?;
            let list = split(args.members_flag.as_deref().or(args.members.as_deref()));
            if list.is_empty() {
                return Err(CliError::usage(
                    "a group needs at least one member: --members NAME_OR_ID,...",
                ));
            }
            let ids = resolve(list)?;
            let g = groups.create(n, &ids).await.map_err(client_error)?;
            out.line(&json_line(
                &Ordered::default()
                    .with("group_id", Value::String(g.id.clone()))
                    .with("name", Value::String(g.name.clone()))
                    .with("members", ids_json(&g.members)),
            ))?;
            output::note(&format!(
                "created group '{}' with {} member(s). Send with: retalk send --group {} \"hello\"",
                output::one_line(&g.name),
                g.members.len(),
                output::one_line(&g.name)
            ));
        }
        Action::List => {
            let all = groups.list().map_err(client_error)?;
            if all.is_empty() && !args.json {
                output::note(
                    "no groups yet: create one with `retalk group create NAME --members A,B`",
                );
            }
            for g in all {
                if args.json {
                    let mut o = Ordered::default()
                        .with("group_id", Value::String(g.id.clone()))
                        .with("name", Value::String(g.name.clone()))
                        .with("members", ids_json(&g.members));
                    if g.invitation {
                        o = o.with("invitation", Value::Bool(true)).with(
                            "inviter",
                            g.inviter
                                .as_ref()
                                .map_or(Value::Null, |i| Value::String(i.to_string())),
                        );
                    }
                    out.line(&json_line(&o))?;
                } else {
                    let state = if g.invitation { "\tinvitation" } else { "" };
                    out.line(&format!(
                        "{}\t{}\t{} member(s){state}",
                        output::one_line(&g.name),
                        g.id,
                        g.members.len()
                    ))?;
                }
            }
        }
        Action::Members => {
            let g = groups
                .get(need_name()?)
                .map_err(client_error)?
                .ok_or_else(|| unknown(name.unwrap_or("")))?;
            let contacts = me.contacts()?;
            for m in &g.members {
                let nm = contacts
                    .iter()
                    .find(|c| c.id == *m)
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                if args.json {
                    out.line(&json_line(
                        &Ordered::default()
                            .with("fingerprint", Value::String(m.to_string()))
                            .with("name", Value::String(nm)),
                    ))?;
                } else {
                    let shown = if nm.is_empty() {
                        "(unnamed)".into()
                    } else {
                        output::one_line(&nm)
                    };
                    out.line(&format!("{shown}\t{m}"))?;
                }
            }
        }
        Action::Add => {
            let list = split(args.members.as_deref().or(args.members_flag.as_deref()));
            if list.is_empty() {
                return Err(CliError::usage(
                    "group add needs members: retalk group add NAME PEER[,PEER...]",
                ));
            }
            let ids = resolve(list)?;
            let (g, n) = groups.add(need_name()?, &ids).await.map_err(client_error)?;
            output::note(&format!(
                "added {n} member(s) to '{}': the new roster reaches everyone on your next group send",
                output::one_line(&g.name)
            ));
        }
        Action::Remove => {
            let list = split(args.members.as_deref().or(args.members_flag.as_deref()));
            let ids = resolve(list)?;
            let (g, n) = groups.remove(need_name()?, &ids).map_err(client_error)?;
            if n == 0 {
                return Err(CliError::usage(format!(
                    "none of those are members: see `retalk group members {}`",
                    output::one_line(&g.name)
                )));
            }
            output::note(&format!(
                "removed {n} member(s) from '{}': they stop getting your copies now, and the \
                 others' clients drop them with your next group send",
                output::one_line(&g.name)
            ));
        }
        Action::Rename => {
            let new = args
                .members
                .as_deref()
                .or(args.members_flag.as_deref())
                .ok_or_else(|| {
                    CliError::usage("group rename needs the new name: retalk group rename OLD NEW")
                })?;
            let old = need_name()?;
            let g = groups.rename(old, new).map_err(client_error)?;
            output::note(&format!(
                "renamed group '{}' -> '{}' (your local label only: the group id stays the same \
                 and peers keep their own names)",
                output::one_line(old),
                output::one_line(&g.name)
            ));
        }
        Action::Leave => {
            opened.need_relay()?;
            let l = groups.leave(need_name()?).await.map_err(client_error)?;
            let total = l.told.len() + l.failed.len();
            output::note(&format!(
                "left '{}': told {}/{total} member(s); anyone who still sends gets refused \
                 automatically. Rejoin later with `retalk group join {}`",
                output::one_line(&l.name),
                l.told.len(),
                output::one_line(&l.name)
            ));
        }
        Action::Join => match groups.join(need_name()?).map_err(client_error)? {
            retalk::Joined::Accepted(g) => output::note(&format!(
                "joined '{}' ({} member(s)): `retalk send --group {} TEXT` posts to it",
                output::one_line(&g.name),
                g.members.len(),
                output::one_line(&g.name)
            )),
            retalk::Joined::Rejoined { name, .. } => output::note(&format!(
                "rejoined '{}': ask a member to add you back; the room reappears with their \
                 next group message",
                output::one_line(&name)
            )),
        },
        Action::Delete => {
            let g = groups.delete(need_name()?).map_err(client_error)?;
            output::note(&format!(
                "deleted group '{}' locally (peers keep their own copy)",
                output::one_line(&g.name)
            ));
        }
        Action::Policy => match name {
            None => {
                let p = me
                    .setting(retalk::ADOPT_SETTING)?
                    .and_then(|v| retalk::AdoptPolicy::parse(&v))
                    .unwrap_or_default();
                out.line(p.as_str())?;
            }
            Some(v) => {
                let p = retalk::AdoptPolicy::parse(v).ok_or_else(|| {
                    CliError::usage(format!("unknown policy '{}'", output::one_line(v)))
                        .hint("one of: contacts (the default), anyone, nobody")
                })?;
                me.set_setting(retalk::ADOPT_SETTING, Some(p.as_str()))?;
                output::note(&format!("new rooms are adopted from: {}", p.as_str()));
            }
        },
    }
    Ok(())
}

fn ids_json(ids: &[retalk::UserId]) -> Value {
    Value::Array(ids.iter().map(|i| Value::String(i.to_string())).collect())
}

fn unknown(name: &str) -> CliError {
    CliError::refusal(format!("no group '{}'", output::one_line(name)))
        .hint("see `retalk group list`")
}
