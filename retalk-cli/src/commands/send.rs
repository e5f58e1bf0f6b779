//! `retalk send PEER TEXT`: encrypt and send one message.

use super::Ctx;
use crate::error::CliError;

/// `retalk send`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `PEER TEXT` (0.0.1), or just `TEXT` with --peer (0.3). PEER is a saved
    /// name or a 32-hex user id; TEXT `-` reads the message from stdin
    #[arg(value_name = "PEER TEXT", num_args = 1..=2, required = true)]
    pub words: Vec<String>,

    /// The recipient: a saved name or a 32-hex user id (0.3 form; the
    /// receipt {"id", "to"} is then always printed)
    #[arg(long, value_name = "PEER")]
    pub peer: Option<String>,

    /// Post to a room (`retalk group`): one encrypted copy per member;
    /// prints {"id", "group", "group_id", "sent", "failed"}, exit 2 if some
    /// member was not reached (named on stderr; kept copies are re-sent)
    #[arg(long, value_name = "NAME", conflicts_with = "peer")]
    pub group: Option<String>,

    /// Print the receipt {"id", "to"} as one JSON line on stdout
    #[arg(long)]
    pub json: bool,

    /// Keep the message for `retalk history` (sealed with the identity's
    /// key); also RETALK_SAVE_MESSAGE=1
    #[arg(long)]
    pub save: bool,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Examples:
  retalk send --peer bob \"hello\"            receipt {\"id\", \"to\"} on stdout
  retalk send --peer bob \"hello\" --save     and keep it for `retalk history`
  retalk send bob \"hello\"                   0.0.1 form: nothing on stdout
  retalk send f1041c25c87351d8550b31cc6b13ab04 \"hi, stranger\"
  git log -1 | retalk send bob -           message from stdin
  retalk send bob -- \"-1 is the answer\"    text starting with a dash
  retalk send bob \"done\" --json            receipt: {\"id\", \"to\"}
  retalk send --group team \"standup in 5\"  {\"id\", \"group\", \"group_id\", \"sent\", \"failed\"}

",
    crate::common_help!()
);
use crate::output::{self, json_line, Lines, Receipt};
use std::io::Read;

/// The message text from stdin: UTF-8, one trailing line break removed (so
/// `echo hi | retalk send bob -` sends `hi`).
pub fn text_from(mut input: impl Read) -> Result<String, CliError> {
    let mut raw = Vec::new();
    input
        .read_to_end(&mut raw)
        .map_err(|e| CliError::failure(format!("cannot read the message from stdin: {e}")))?;
    let mut text = String::from_utf8(raw).map_err(|_| {
        CliError::usage("the message on stdin is not UTF-8 text")
            .hint("retalk sends text; encode binary data first (e.g. base64)")
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Runs `retalk send`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    if let Some(group) = &args.group {
        return send_group(ctx, args, group).await;
    }
    let (peer, raw, receipt) = match (&args.peer, args.words.as_slice()) {
        (Some(p), [t]) => (p.clone(), t.clone(), true),
        (None, [p, t]) => (p.clone(), t.clone(), args.json),
        (Some(_), _) => {
            return Err(CliError::usage(
                "give the text once: `send --peer PEER TEXT`",
            ))
        }
        (None, _) => {
            return Err(CliError::usage(
                "send needs a recipient: --peer PEER, or `send PEER TEXT`",
            ))
        }
    };
    let text = if raw == "-" {
        text_from(std::io::stdin().lock())?
    } else {
        raw
    };
    if text.trim().is_empty() {
        return Err(CliError::usage("the message is empty")
            .hint("give the text to send (quote it), or `-` to read it from stdin"));
    }
    let opened = ctx.open(true).await?;
    let me = &opened.identity;
    let to = me.resolve_peer(&peer)?;
    if to == me.user_id() {
        return Err(CliError::refusal("cannot send to your own user id").hint(
            "notes to self are not supported: a message needs another identity as recipient; \
                   check the id or name you gave",
        ));
    }
    opened.need_relay()?;
    // Heal a relay that forgot us (one round trip), so the peer can answer.
    me.ensure_published().await?;
    let id = me.send(&to, &text).await?;
    if super::save_messages(args.save, ctx.env) {
        me.keep_sent(&to, &id, &text)?;
    }
    let label = if to == peer {
        to.clone()
    } else {
        format!("{} ({to})", output::one_line(&peer))
    };
    output::note(&format!("sent to {label}"));
    if receipt {
        Lines::stdout().line(&json_line(&Receipt { id: &id, to: &to }))?;
    }
    Ok(())
}

/// `send --group NAME TEXT`.
async fn send_group(ctx: &Ctx<'_>, args: &Args, group: &str) -> Result<(), CliError> {
    let [raw] = args.words.as_slice() else {
        return Err(CliError::usage(
            "give the text once: `send --group NAME TEXT`",
        ));
    };
    let text = if raw == "-" {
        text_from(std::io::stdin().lock())?
    } else {
        raw.clone()
    };
    if text.trim().is_empty() {
        return Err(CliError::usage("the message is empty")
            .hint("give the text to send (quote it), or `-` to read it from stdin"));
    }
    let opened = ctx.open(true).await?;
    opened.need_relay()?;
    let me = &opened.identity;
    if me
        .groups()
        .get(group)
        .map_err(crate::backend::client_error)?
        .is_none()
    {
        return Err(
            CliError::refusal(format!("no group '{}'", output::one_line(group)))
                .hint("create one with `retalk group create NAME --members ...`"),
        );
    }
    me.ensure_published().await?;
    let r = me
        .groups()
        .send(group, &text)
        .await
        .map_err(crate::backend::client_error)?;
    if super::save_messages(args.save, ctx.env) {
        me.keep_group_sent(&r, &text)?;
    }
    let receipt = output::Ordered::default()
        .with("id", r.id.clone().into())
        .with("group", r.group.clone().into())
        .with("group_id", r.group_id.clone().into())
        .with("sent", r.sent.len().into())
        .with("failed", r.failed.len().into());
    Lines::stdout().line(&json_line(&receipt))?;
    output::note(&format!(
        "sent to group '{}' ({}/{} members)",
        output::one_line(&r.group),
        r.sent.len(),
        r.sent.len() + r.failed.len()
    ));
    for f in &r.failed {
        let what = if f.kept {
            "kept; re-sent by `retalk sync` or a running `receive --follow`"
        } else {
            "not sent"
        };
        output::note(&format!(
            "  unreachable: {} ({}; {what})",
            f.member, f.reason
        ));
    }
    if r.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::refusal(format!(
            "{} of {} members not reached",
            r.failed.len(),
            r.sent.len() + r.failed.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_text_drops_one_trailing_line_break() {
        assert_eq!(text_from(&b"hi\n"[..]).unwrap(), "hi");
        assert_eq!(text_from(&b"hi\r\n"[..]).unwrap(), "hi");
        assert_eq!(text_from(&b"a\nb\n\n"[..]).unwrap(), "a\nb\n");
        assert_eq!(text_from(&b"no newline"[..]).unwrap(), "no newline");
        assert_eq!(text_from(&b""[..]).unwrap(), "");
    }

    #[test]
    fn stdin_must_be_utf8() {
        assert_eq!(text_from(&[0xff, 0xfe][..]).unwrap_err().exit_code(), 2);
    }
}
