//! `retalk send PEER TEXT`: encrypt and send one message.

use super::Ctx;
use crate::args::SendArgs;
use crate::error::CliError;
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
pub async fn run(ctx: &Ctx<'_>, args: &SendArgs) -> Result<(), CliError> {
    let text = if args.text == "-" {
        text_from(std::io::stdin().lock())?
    } else {
        args.text.clone()
    };
    let opened = ctx.open(true).await?;
    let me = &opened.identity;
    let to = me.resolve_peer(&args.peer)?;
    opened.need_relay()?;
    // Heal a relay that forgot us (one round trip), so the peer can answer.
    me.ensure_published().await?;
    let id = me.send(&to, &text).await?;
    let label = if to == args.peer {
        to.clone()
    } else {
        format!("{} ({to})", output::one_line(&args.peer))
    };
    output::note(&format!("sent to {label}"));
    if args.json {
        Lines::stdout().line(&json_line(&Receipt { id: &id, to: &to }))?;
    }
    Ok(())
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
