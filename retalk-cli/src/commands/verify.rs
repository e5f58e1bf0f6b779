//! `retalk verify PEER`: check a contact's keys against its id and record
//! them.

use super::Ctx;
use crate::error::CliError;
use crate::output;

/// `retalk verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A saved contact (name or id)
    #[arg(value_name = "PEER")]
    pub peer: String,

    /// The contact's identity key, checked by hand instead of asking the relay
    #[arg(long, value_name = "KEY", requires = "signing_key")]
    pub identity_key: Option<String>,

    /// The contact's signing key (with --identity-key)
    #[arg(long, value_name = "KEY", requires = "identity_key")]
    pub signing_key: Option<String>,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
The contact's user id is the hash of its two public keys. verify fetches the
keys from the relay (or takes them from --identity-key/--signing-key), checks
that they hash to the id, refuses with PIN MISMATCH if not, and records them:
every later key set the relay serves for the contact must match.

Examples:
  retalk verify bob
  retalk verify bob --identity-key IK --signing-key SK

",
    crate::common_help!()
);

/// Runs `retalk verify`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    // Keys given by hand for a contact of the owner-wide list need no
    // identity (nothing is signed), as in 0.3.x.
    if let (Some(ik), Some(sk), false) =
        (&args.identity_key, &args.signing_key, ctx.names_identity())
    {
        let global = crate::select::identity::global_contacts(ctx.env)?;
        if let Some(c) = global
            .get(&args.peer)
            .map_err(crate::backend::client_error)?
        {
            global
                .verify_keys(&c.id, ik, sk)
                .map_err(crate::backend::client_error)?;
            verified(
                &c.name,
                c.id.as_str(),
                "the keys given",
                "the global contacts",
            );
            return Ok(());
        }
    }
    let opened = ctx.open(true).await?;
    let me = &opened.identity;
    let c = me.contact(&args.peer)?.ok_or_else(|| {
        CliError::refusal(format!(
            "no saved contact '{}'",
            output::one_line(&args.peer)
        ))
        .hint("add it first with `retalk add ID --peer NAME`")
    })?;
    let id = c.id.to_string();
    // A contact of the owner-wide list (not this identity's own) has its
    // keys recorded there.
    let global = match me.global_contacts() {
        Some(g) if me.own_contact(&args.peer)?.is_none() => Some(g),
        _ => None,
    };
    let source = match (&args.identity_key, &args.signing_key, global) {
        (Some(ik), Some(sk), None) => {
            me.verify_keys(&id, ik, sk)?;
            "the keys given"
        }
        (Some(ik), Some(sk), Some(g)) => {
            g.verify_keys(&c.id, ik, sk)
                .map_err(crate::backend::client_error)?;
            "the keys given"
        }
        (_, _, None) => {
            opened.need_relay()?;
            me.verify_from_relay(&id).await?;
            "the relay"
        }
        (_, _, Some(g)) => {
            opened.need_relay()?;
            let (ik, sk) = me.fetch_keys(&id).await?;
            g.verify_keys(&c.id, &ik, &sk)
                .map_err(crate::backend::client_error)?;
            "the relay"
        }
    };
    let list = if global.is_some() {
        "the global contacts"
    } else {
        "your contacts"
    };
    verified(&c.name, &id, source, list);
    Ok(())
}

/// The confirmation on stderr (with 0.3.x's `✓ Verified NAME`, which
/// scripts look for).
pub fn verified(name: &str, id: &str, source: &str, list: &str) {
    output::note(&format!(
        "✓ Verified {} ({id}): the keys from {source} match its id and are recorded in {list}",
        output::one_line(name)
    ));
}
