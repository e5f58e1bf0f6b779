//! `retalk add ID --peer NAME [--override] [--verify]` (0.3) and
//! `retalk add NAME ID [--pin KEY]` (0.0.1): save a peer under a local name.

use super::Ctx;
use crate::error::CliError;
use crate::output;
use retalk::proto::IdentityKey;

/// `retalk add`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The peer's user id (0.3 form, with --peer NAME), or your local NAME for
    /// the peer followed by its ID (0.0.1 form)
    #[arg(value_name = "ID | NAME")]
    pub first: String,

    /// The peer's user id, in the 0.0.1 form `add NAME ID`
    #[arg(value_name = "ID")]
    pub second: Option<String>,

    /// Your local name for the peer (0.3 form: `add ID --peer NAME`)
    #[arg(long, value_name = "NAME")]
    pub peer: Option<String>,

    /// Re-point a name that already stands for another id
    #[arg(long = "override")]
    pub replace: bool,

    /// Also fetch the peer's keys from the relay, check them against the id
    /// and record them (like `retalk verify`)
    #[arg(long)]
    pub verify: bool,

    /// Save into the owner-wide contact list every identity sees
    /// (`$RETALK_HOME/contacts.db`, shared with retalk 0.3.x); the default
    /// of the 0.3 form when no identity is selected
    #[arg(long)]
    pub global: bool,

    /// Also require this full identity key (base64) from the relay for the peer
    #[arg(long, value_name = "KEY")]
    pub pin: Option<String>,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Which list: with an identity selected (-u NAME, --dir DIR, RETALK_USER,
STORE) the contact is that identity's; the 0.3 form `add ID --peer NAME`
without one, or with --global, saves it in the owner-wide list that every
identity sees (its own contacts win on the same id or name). The 0.0.1 form
`add NAME ID` always saves into the identity it opens.

Examples:
  retalk add f1041c25c87351d8550b31cc6b13ab04 --peer bob --verify -u alice
  retalk add f1041c25c87351d8550b31cc6b13ab04 --peer bob --global
  retalk add f1041c25c87351d8550b31cc6b13ab04 --peer bob --override   re-point bob
  retalk add bob f1041c25c87351d8550b31cc6b13ab04                     0.0.1 form
  retalk add bob \"$BOB_ID\" --pin \"$BOB_IDENTITY_KEY\"

",
    crate::common_help!()
);

/// True for 32 hex characters (either case).
pub fn looks_like_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Normalises a user id typed by a person: trimmed, lowercase, 32 hex.
pub fn normalize_id(s: &str) -> Result<String, CliError> {
    let t = s.trim();
    if looks_like_id(t) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(
            CliError::usage(format!("'{}' is not a user id", output::one_line(s)))
                .hint("a user id is 32 hex characters; the peer prints theirs with `retalk id`"),
        )
    }
}

/// Checks a local peer name.
pub fn check_peer_name(name: &str) -> Result<(), CliError> {
    let fix = "use a short human name such as `bob`";
    if name.trim().is_empty() {
        return Err(CliError::usage("the peer name is empty").hint(fix));
    }
    if name.chars().any(char::is_control) {
        return Err(CliError::usage("the peer name contains control characters").hint(fix));
    }
    if looks_like_id(name) {
        return Err(CliError::usage("the peer name looks like a user id")
            .hint(format!("{fix}; the order is `retalk add NAME ID`")));
    }
    if name.starts_with('~') {
        return Err(CliError::usage(
            "the peer name starts with `~`, which marks unverified self-chosen names",
        )
        .hint(fix));
    }
    Ok(())
}

/// Checks a `--pin` identity key.
pub fn check_pin(pin: &str) -> Result<(), CliError> {
    IdentityKey::parse(pin, "--pin").map(|_| ()).map_err(|_| {
        CliError::usage("--pin is not an identity key").hint(
            "give the peer's full identity key: the \"identity_key\" of `retalk id --json` \
             on their side (base64, 43 characters)",
        )
    })
}

/// Runs `retalk add`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let explicit = ctx.global.store.is_some() || ctx.global.user_level.is_some();
    if args.global && explicit {
        return Err(CliError::usage(
            "--global and --user/--dir target different lists: pick one",
        ));
    }
    let zero_three = args.second.is_none();
    if args.global || (zero_three && !ctx.names_identity()) {
        return add_global(ctx, args).await;
    }
    // 0.3: `add ID [--peer NAME]`; 0.0.1: `add NAME ID`.
    let (name, raw_id) = match (&args.peer, &args.second) {
        (Some(_), Some(_)) => {
            return Err(CliError::usage(
                "give the name once: `add ID --peer NAME` or `add NAME ID`, not both",
            ))
        }
        (Some(n), None) => (n.clone(), args.first.clone()),
        (None, Some(id)) => (args.first.clone(), id.clone()),
        (None, None) => (normalize_id(&args.first)?, args.first.clone()),
    };
    let id = normalize_id(&raw_id)?;
    if args.second.is_some() || args.peer.is_some() {
        check_peer_name(&name)?;
    }
    if let Some(pin) = &args.pin {
        check_pin(pin)?;
    }
    let opened = ctx.open(true).await?;
    let me = &opened.identity;
    if id == me.user_id() {
        return Err(CliError::refusal("that is your own user id")
            .hint("add the id of the peer you want to talk to (they print it with `retalk id`)"));
    }
    let outcome = match me.add_contact(&name, &id, args.replace) {
        Err(e) if e.message.contains("already exists") => {
            let taken: Vec<String> = me.contacts()?.into_iter().map(|c| c.name).collect();
            return Err(e.hint(format!(
                "pick another name (e.g. '{}'), or pass --override to re-point this one",
                free_name(&name, &taken)
            )));
        }
        other => other?,
    };
    if let Some(pin) = &args.pin {
        me.add_peer(&name, &id, Some(pin))?;
    }
    let pinned = if args.pin.is_some() {
        " (identity key pinned)"
    } else {
        ""
    };
    let verb = match outcome {
        retalk::Added::New => "saved",
        retalk::Added::Unchanged => "already saved:",
        retalk::Added::Replaced => "re-pointed",
    };
    output::note(&format!(
        "{verb} peer {} = {id}{pinned}",
        output::one_line(&name)
    ));
    if args.verify {
        opened.need_relay()?;
        me.verify_from_relay(&id).await?;
        super::verify::verified(&name, &id, "the relay", "your contacts");
    }
    Ok(())
}

/// `add ID [--peer NAME] [--override] [--verify]` into the owner-wide list.
/// No passphrase is needed, except to sign the relay request of --verify
/// (with the identity the command line or the default selects).
async fn add_global(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    if args.second.is_some() {
        return Err(CliError::usage(
            "the owner-wide list takes the 0.3 form: `add ID --peer NAME --global`",
        ));
    }
    if args.pin.is_some() {
        return Err(CliError::usage("--pin applies to an identity's contacts")
            .hint("use --verify to record the contact's keys in the owner-wide list"));
    }
    let id = normalize_id(&args.first)?;
    if let Some(n) = &args.peer {
        check_peer_name(n)?;
    }
    let global = crate::select::identity::global_contacts(ctx.env)?;
    let parsed = retalk::UserId::parse(&id, "user id")
        .map_err(|_| CliError::usage("a user id is 32 hex characters"))?;
    let outcome = match global.add(args.peer.as_deref(), &parsed, args.replace) {
        Err(e @ retalk::ClientError::NameTaken { .. }) => {
            let taken: Vec<String> = global
                .list()
                .map_err(crate::backend::client_error)?
                .into_iter()
                .map(|c| c.name)
                .collect();
            let name = args.peer.as_deref().unwrap_or_default();
            return Err(crate::backend::client_error(e).hint(format!(
                "pick another name (e.g. '{}'), or pass --override to re-point this one",
                free_name(name, &taken)
            )));
        }
        other => other.map_err(crate::backend::client_error)?,
    };
    let label = args.peer.clone().unwrap_or_else(|| id.clone());
    let verb = match outcome {
        retalk::Added::New => "saved",
        retalk::Added::Unchanged => "already saved:",
        retalk::Added::Replaced => "re-pointed",
    };
    output::note(&format!(
        "{verb} peer {} = {id} in the global contacts ({})",
        output::one_line(&label),
        global.path().display()
    ));
    if args.verify {
        let opened = ctx.open(false).await.map_err(|e| {
            e.hint("verifying against the relay signs a request: select an identity with -u NAME")
        })?;
        opened.need_relay()?;
        let (ik, sk) = opened.identity.fetch_keys(&id).await?;
        global
            .verify_keys(&parsed, &ik, &sk)
            .map_err(crate::backend::client_error)?;
        super::verify::verified(&label, &id, "the relay", "the global contacts");
    }
    Ok(())
}

/// The first of NAME-1, NAME-2, ... that no contact uses (0.3.x suggests
/// the same).
fn free_name(name: &str, taken: &[String]) -> String {
    (1..)
        .map(|n| format!("{name}-{n}"))
        .find(|c| !taken.iter().any(|t| t == c))
        .expect("an unbounded range has a free name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_name_is_suggested() {
        let taken = vec!["bob".to_owned(), "bob-1".to_owned()];
        assert_eq!(free_name("bob", &taken), "bob-2");
        assert_eq!(free_name("carol", &taken), "carol-1");
    }

    #[test]
    fn ids_are_normalised() {
        assert_eq!(
            normalize_id(" F1041C25C87351D8550B31CC6B13AB04 ").unwrap(),
            "f1041c25c87351d8550b31cc6b13ab04"
        );
        assert!(normalize_id("f1041c25").is_err());
        assert!(normalize_id("g1041c25c87351d8550b31cc6b13ab04").is_err());
    }

    #[test]
    fn peer_names() {
        assert!(check_peer_name("bob").is_ok());
        assert!(check_peer_name("Bob Smith").is_ok());
        for bad in ["", "  ", "~bob", "a\tb", "f1041c25c87351d8550b31cc6b13ab04"] {
            assert_eq!(check_peer_name(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn pins_must_be_keys() {
        assert!(check_pin("vGY3ZQ3xpIB2ncX5fGXJmJH/vq8yCd4Cx2XKTy1Sd0M").is_ok());
        assert!(check_pin("not a key").is_err());
    }
}
