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
line, or with --json one object per line. Contacts belong to the selected
identity.

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

/// Runs `retalk contacts`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let opened = ctx.open(false).await?;
    let me = &opened.identity;
    let mut out = Lines::stdout();
    if let Some(x) = &args.remove {
        let names = me.remove_contact(x)?;
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
