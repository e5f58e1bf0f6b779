//! `retalk id`: print the user id, or the public identity (`--json`,
//! `--card`), or a copy-paste invitation (`--invite-message`).

use super::Ctx;
use crate::error::CliError;
use crate::output::{json_line, Card, IdentityJson, Lines};
use crate::select::identity;

/// `retalk id`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON line: 0.3's card {"fingerprint", "name", "identity_key",
    /// "signing_key", "verified", "relay"} (plus "user_id") when the command
    /// line speaks 0.3 (--dir, --user, RETALK_USER...), else 0.0.1's
    /// {"user_id", "identity_key", "signing_key", "name"}
    #[arg(long)]
    pub json: bool,

    /// The contact card, for people
    #[arg(long, conflicts_with = "json")]
    pub card: bool,

    /// A copy-paste shell snippet inviting a peer to message you
    #[arg(long, conflicts_with_all = ["json", "card"])]
    pub invite_message: bool,

    /// With --invite-message: include this invite code (`retalk invite
    /// new`), so the peer redeems it with `retalk request` instead of
    /// sending you their id
    #[arg(long, value_name = "CODE", requires = "invite_message")]
    pub code: Option<String>,

    /// The most recently created named identity (in $RETALK_HOME or
    /// ~/.retalk, and $XDG_DATA_HOME/retalk)
    #[arg(long)]
    pub last: bool,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Examples:
  retalk id                   id of the selected identity
  retalk id -s ./alice
  retalk id --json            {\"user_id\", \"fingerprint\", \"identity_key\", \"signing_key\", ...}
  retalk id --card            the same, for people
  retalk id --last            the identity `retalk init` made last
  retalk id --invite-message  a snippet to paste to a peer
  retalk id --invite-message --code CODE   with an invite code to redeem

",
    crate::common_help!()
);

/// Runs `retalk id`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let opened = if args.last {
        let dir = identity::latest(ctx.env, &crate::backend::exists).ok_or_else(|| {
            CliError::refusal("no identity yet").hint("create one with `retalk init -u NAME`")
        })?;
        ctx.open_dir(&dir, false).await?
    } else {
        ctx.open(false).await?
    };
    let me = &opened.identity;
    let mut out = Lines::stdout();
    let id = me.user_id();
    let relay = me.relay_url();
    if args.json && !ctx.dialect_03 {
        // 0.0.1's object, field for field.
        out.line(&json_line(&IdentityJson {
            user_id: &id,
            identity_key: &me.identity_key(),
            signing_key: &me.signing_key(),
            name: &me.name(),
        }))
    } else if args.json {
        out.line(&json_line(&Card {
            fingerprint: &id,
            name: &me.name(),
            identity_key: &me.identity_key(),
            signing_key: &me.signing_key(),
            verified: true,
            relay: relay.as_deref(),
            user_id: Some(&id),
        }))
    } else if args.card {
        let name = me.name();
        out.line(&format!(
            "Name:         {}",
            if name.is_empty() {
                "(unnamed)".into()
            } else {
                crate::output::one_line(&name)
            }
        ))?;
        out.line(&format!("Fingerprint:  {id}"))?;
        if let Some(r) = &relay {
            out.line(&format!("Relay:        {r}"))?;
        }
        out.line("Verified:     yes")?;
        out.line(&format!("Identity key: {}", me.identity_key()))?;
        out.line(&format!("Signing key:  {}", me.signing_key()))
    } else if args.invite_message {
        let name = me.name();
        let name = if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            "me".to_string()
        } else {
            name
        };
        let relay = relay.unwrap_or_else(|| "\"<relay-url>\"".into());
        let mut lines = vec![
            "```bash".to_string(),
            "# Message me over retalk, an end-to-end-encrypted messaging CLI.".into(),
            "# 1. Create your identity (pick a name and a passphrase file):".into(),
            format!("retalk init -u <your-name> --relay {relay} --passphrase-file <FILE>"),
        ];
        match &args.code {
            Some(code) => {
                // the code is printed as the shell will read it: only the
                // characters codes are made of (base64url) pass
                let safe = code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !safe || code.starts_with('-') {
                    return Err(CliError::usage(
                        "that is not an invite code (codes are letters, digits, - and _)",
                    )
                    .hint("mint one with `retalk invite new`"));
                }
                lines.extend([
                    "# 2. Redeem my invite code. This adds me as your verified contact".into(),
                    "#    AND sends me an encrypted request so I add you back. Done.".into(),
                    format!(
                        "retalk request {id} --code {code} --peer {name} -u <your-name> \
                         --passphrase-file <FILE>"
                    ),
                    format!("# Invite code: {code}"),
                ]);
            }
            None => lines.extend([
                "# 2. Add me as a verified contact:".into(),
                format!(
                    "retalk add {id} --peer {name} --verify -u <your-name> --passphrase-file <FILE>"
                ),
                "# 3. Send me your id (`retalk id -u <your-name>`), so I can add you back.".into(),
            ]),
        }
        lines.push("```".into());
        for l in &lines {
            out.line(l)?;
        }
        Ok(())
    } else {
        out.line(&id)
    }
}
