//! `retalk contacts`: list, show or remove saved contacts.

use super::Ctx;
use crate::error::CliError;
use crate::output::{self, json_line, Card, Lines};

/// `retalk contacts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per line: {"name", "fingerprint", "identity_key",
    /// "signing_key", "verified"}
    #[arg(long)]
    pub json: bool,

    /// Only this contact (name or id): its card
    #[arg(long, value_name = "CONTACT")]
    pub show: Option<String>,

    /// Forget this contact (name, or every name of an id)
    #[arg(long, value_name = "CONTACT", conflicts_with = "show")]
    pub remove: Option<String>,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Lists the contacts saved with `retalk add`: `NAME<TAB>ID<TAB>verified` per
line, or with --json one object per line. With an identity selected (-u NAME,
--dir DIR, RETALK_USER, STORE): its own contacts over the owner-wide list
(its own win on the same id or name); without one: the owner-wide list
(`$RETALK_HOME/contacts.db`, shared with retalk 0.3.x). --remove deletes from
whichever list holds the contact, the identity's own first.

Examples:
  retalk contacts
  retalk contacts --json | jq -r .fingerprint
  retalk contacts --show bob --json
  retalk contacts --remove bob

",
    crate::common_help!()
);

fn card(c: &retalk::Contact) -> String {
    let id = c.id.to_string();
    json_line(&Card {
        name: if c.name == id { "" } else { c.name.as_str() },
        fingerprint: &id,
        identity_key: c.identity_key.as_deref().unwrap_or(""),
        signing_key: c.signing_key.as_deref().unwrap_or(""),
        verified: c.verified(),
        relay: None,
        user_id: None,
    })
}

fn row(c: &retalk::Contact) -> String {
    let id = c.id.to_string();
    let name = if c.name == id {
        "(unnamed)".to_string()
    } else {
        output::one_line(&c.name)
    };
    format!(
        "{name}\t{id}\t{}",
        if c.verified() {
            "verified"
        } else {
            "unverified"
        }
    )
}

/// `contacts` without an identity: the owner-wide list alone, no
/// passphrase needed.
fn run_global(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let global = crate::select::identity::global_contacts(ctx.env)?;
    let mut out = Lines::stdout();
    let err = crate::backend::client_error;
    if let Some(x) = &args.remove {
        let Some(name) = global.remove(x).map_err(err)? else {
            return Err(CliError::refusal(format!(
                "no saved contact '{}' to remove",
                output::one_line(x)
            )));
        };
        output::note(&format!(
            "removed contact {} from the global contacts",
            output::one_line(&name)
        ));
        return Ok(());
    }
    if let Some(x) = &args.show {
        let c = global.get(x).map_err(err)?.ok_or_else(|| {
            CliError::refusal(format!("unknown contact '{}'", output::one_line(x)))
                .hint("see `retalk contacts`")
        })?;
        return out.line(&if args.json { card(&c) } else { row(&c) });
    }
    for c in global.list().map_err(err)? {
        out.line(&if args.json { card(&c) } else { row(&c) })?;
    }
    Ok(())
}

/// Runs `retalk contacts`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    if !ctx.names_identity() {
        return run_global(ctx, args);
    }
    let opened = ctx.open(false).await?;
    let me = &opened.identity;
    let mut out = Lines::stdout();
    if let Some(x) = &args.remove {
        let mut names = me.remove_contact(x)?;
        if names.is_empty() {
            if let Some(g) = me.global_contacts() {
                names.extend(g.remove(x).map_err(crate::backend::client_error)?);
            }
        }
        if names.is_empty() {
            return Err(CliError::refusal(format!(
                "no saved contact '{}' to remove",
                output::one_line(x)
            )));
        }
        output::note(&format!(
            "removed contact {}",
            output::one_line(&names.join(", "))
        ));
        return Ok(());
    }
    if let Some(x) = &args.show {
        let c = me.contact(x)?.ok_or_else(|| {
            CliError::refusal(format!("unknown contact '{}'", output::one_line(x)))
                .hint("see `retalk contacts`")
        })?;
        return out.line(&if args.json { card(&c) } else { row(&c) });
    }
    for c in me.contacts()? {
        out.line(&if args.json { card(&c) } else { row(&c) })?;
    }
    Ok(())
}
