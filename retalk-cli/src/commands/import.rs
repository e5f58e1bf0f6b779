//! `retalk import [CARD|-] [--as NAME] [--override]`: save a contact from
//! its card, the JSON `retalk id --json` (or 0.3.x `contacts --show`)
//! prints: `{"fingerprint", "name", "identity_key", "signing_key", ...}`.
//! `import --inbox [NAME|ID] [--list [--json]]`: the cards peers shared
//! (`retalk share`), which `receive` staged.

use super::add::{check_peer_name, looks_like_id};
use super::Ctx;
use crate::error::CliError;
use crate::output;
use serde_json::Value;
use std::io::Read;

/// `retalk import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The card (JSON); `-` or nothing reads it from stdin
    #[arg(value_name = "CARD")]
    pub card: Option<String>,

    /// Save it under this name instead of the card's own
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,

    /// Re-point a name that already stands for another id
    #[arg(long = "override")]
    pub replace: bool,

    /// Import from the contact inbox (cards peers shared with `retalk
    /// share`, staged by `receive`); CARD then names one staged card (its
    /// name or id), else all are imported
    #[arg(long)]
    pub inbox: bool,

    /// With --inbox: list the staged cards, import nothing
    #[arg(long, requires = "inbox")]
    pub list: bool,

    /// With --inbox --list: one JSON object per staged card
    #[arg(long, requires = "list")]
    pub json: bool,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
A card names a user id (\"fingerprint\") and a recommended name, and may carry
the two public keys. A card with keys is checked like `retalk verify`: the
keys must hash to the id (PIN MISMATCH otherwise) and are recorded, so the
contact is verified without asking the relay. A card without keys saves an
unverified contact, like `retalk add`. Other fields (\"relay\", \"verified\",
\"user_id\") are ignored: a card's word is not proof.

With --inbox the cards come from the contact inbox: those peers sent with
`retalk share`, staged by `receive` (0.3.x's record {\"kind\": \"contact\"}).
A staged card whose keys do not hash to its id was never staged. Each import
moves the card out of the inbox; one refused (its name taken, say) stays.

Examples:
  retalk id --json -u bob > bob.card      on Bob's side
  retalk import \"$(cat bob.card)\" -u alice
  retalk import - --as bobby -u alice < bob.card
  retalk import --inbox --list -u alice   cards peers shared with you
  retalk import --inbox -u alice          save them all as contacts
  retalk import --inbox bob --as bobby    just one, under your own name

",
    crate::common_help!()
);

/// A checked card.
#[derive(Debug, PartialEq, Eq)]
pub struct Card {
    /// The user id, lowercase.
    pub id: String,
    /// The name to save it under.
    pub name: String,
    /// Both keys, when the card carries them.
    pub keys: Option<(String, String)>,
}

fn bad(msg: impl Into<String>) -> CliError {
    CliError::usage(msg).hint(
        "a card is the JSON `retalk id --json` prints: {\"fingerprint\": \"<32 hex>\", \
         \"name\": \"bob\", \"identity_key\": \"...\", \"signing_key\": \"...\"}",
    )
}

/// Parses and checks a card's shape (not yet its keys' hash).
pub fn parse(text: &str, as_name: Option<&str>) -> Result<Card, CliError> {
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| bad(format!("card is not valid JSON: {e}")))?;
    let Value::Object(m) = v else {
        return Err(bad("card must be a JSON object"));
    };
    let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let id = field("fingerprint");
    if !looks_like_id(&id) {
        return Err(bad(
            "card has no valid fingerprint (expected 32 hex characters)",
        ));
    }
    let name = match as_name {
        Some(n) => n.to_owned(),
        None => field("name"),
    };
    if name.is_empty() {
        return Err(
            CliError::usage("card has no recommended name").hint("pass `--as NAME` to choose one")
        );
    }
    check_peer_name(&name).map_err(|e| match as_name {
        None => e.hint("the card's name cannot be used: pass `--as NAME`"),
        Some(_) => e,
    })?;
    let (ik, sk) = (field("identity_key"), field("signing_key"));
    let keys = match (ik.is_empty(), sk.is_empty()) {
        (true, true) => None,
        (false, false) => Some((ik, sk)),
        _ => {
            return Err(bad(
                "card has only one key: a verified card needs both identity_key and \
                 signing_key, or neither",
            ))
        }
    };
    Ok(Card {
        id: id.to_ascii_lowercase(),
        name,
        keys,
    })
}

/// `import --inbox`: list or import the staged cards.
async fn run_inbox(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    if args.list && args.as_name.is_some() {
        return Err(CliError::usage(
            "--as has no meaning with --list (nothing is imported)",
        ));
    }
    let opened = ctx.open(true).await?;
    let me = &opened.identity;
    let contacts = me.contacts_handle();
    let mut cards = contacts.inbox().map_err(crate::backend::client_error)?;
    if args.list {
        let mut out = output::Lines::stdout();
        for c in &cards {
            let via = if c.from_name.is_empty() {
                c.from.as_str()
            } else {
                &c.from_name
            };
            out.line(&if args.json {
                output::json_line(&serde_json::json!({
                    "fingerprint": c.fingerprint.as_str(), "name": c.name,
                    "identity_key": c.identity_key.clone().unwrap_or_default(),
                    "signing_key": c.signing_key.clone().unwrap_or_default(),
                    "from_fp": c.from, "from_name": c.from_name, "msg_id": c.msg_id,
                    "verified": c.verified(),
                }))
            } else {
                format!(
                    "{}\t{}\t{}\tfrom {}",
                    output::one_line(&c.name),
                    c.fingerprint,
                    if c.verified() {
                        "verified"
                    } else {
                        "unverified"
                    },
                    output::one_line(via)
                )
            })?;
        }
        return Ok(());
    }
    if let Some(sel) = args.card.as_deref() {
        cards.retain(|c| c.name == sel || c.fingerprint.as_str() == sel);
        if cards.is_empty() {
            return Err(CliError::refusal(format!(
                "no staged contact matching '{}'",
                output::one_line(sel)
            ))
            .hint("see `retalk import --inbox --list`"));
        }
    }
    if args.as_name.is_some() && cards.len() != 1 {
        return Err(CliError::usage(
            "--as needs exactly one contact: name the staged card to import",
        ));
    }
    if cards.is_empty() {
        output::note("import --inbox: inbox empty");
        return Ok(());
    }
    let (mut imported, mut refused) = (0, 0);
    for c in &cards {
        let name = args.as_name.clone().unwrap_or_else(|| c.name.clone());
        let id = c.fingerprint.to_string();
        let saved = check_peer_name(&name)
            .map_err(|e| e.hint("pass `--as NAME` to choose one"))
            .and_then(|()| me.add_contact(&name, &id, args.replace).map(|_| ()))
            .and_then(|()| match (&c.identity_key, &c.signing_key) {
                (Some(ik), Some(sk)) => me.verify_keys(&id, ik, sk),
                _ => Ok(()),
            });
        match saved {
            Ok(()) => {
                contacts
                    .inbox_remove(&c.fingerprint)
                    .map_err(crate::backend::client_error)?;
                imported += 1;
                output::note(&format!(
                    "imported contact '{}' ({id}) [{}]",
                    output::one_line(&name),
                    if c.verified() {
                        "verified"
                    } else {
                        "unverified"
                    }
                ));
            }
            Err(e) => {
                refused += 1;
                output::note(&format!(
                    "retalk: kept staged (not imported): {}",
                    output::one_line(&e.message)
                ));
            }
        }
    }
    output::note(&format!(
        "import --inbox: {imported} imported, {refused} refused"
    ));
    if refused > 0 {
        return Err(CliError::refusal(format!(
            "{refused} staged contact(s) not imported"
        )));
    }
    Ok(())
}

/// Runs `retalk import`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    if args.inbox {
        return run_inbox(ctx, args).await;
    }
    let text = match args.card.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::failure(format!("cannot read the card from stdin: {e}")))?;
            s
        }
        Some(t) => t.to_owned(),
    };
    let card = parse(&text, args.as_name.as_deref())?;
    if let Some((ik, sk)) = &card.keys {
        let got = retalk::proto::fingerprint(ik, sk);
        if got != card.id {
            return Err(CliError::refusal(format!(
                "PIN MISMATCH: the card's keys hash to {got}, not {}; refusing a contact \
                 whose keys do not match its id",
                card.id
            ))
            .hint("ask the peer for their card again over a channel you trust"));
        }
    }
    let opened = ctx.open(true).await?;
    let me = &opened.identity;
    if card.id == me.user_id() {
        return Err(CliError::refusal("that card is your own")
            .hint("import the card of the peer you want to talk to"));
    }
    me.add_contact(&card.name, &card.id, args.replace)?;
    if let Some((ik, sk)) = &card.keys {
        me.verify_keys(&card.id, ik, sk)?;
    }
    output::note(&format!(
        "imported contact '{}' ({}) [{}]",
        output::one_line(&card.name),
        card.id,
        if card.keys.is_some() {
            "verified"
        } else {
            "unverified"
        }
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "f1041c25c87351d8550b31cc6b13ab04";

    #[test]
    fn cards_are_checked() {
        let c = parse(&format!(r#"{{"fingerprint":"{ID}","name":"bob"}}"#), None).unwrap();
        assert_eq!((c.id.as_str(), c.name.as_str(), c.keys), (ID, "bob", None));
        let c = parse(
            &format!(r#"{{"fingerprint":"{ID}","name":"bob"}}"#),
            Some("bobby"),
        )
        .unwrap();
        assert_eq!(c.name, "bobby");
        for bad in [
            "not json".to_string(),
            "[1]".to_string(),
            r#"{"fingerprint":"123","name":"bob"}"#.to_string(),
            format!(r#"{{"fingerprint":"{ID}"}}"#),
            format!(r#"{{"fingerprint":"{ID}","name":"{ID}"}}"#),
            format!(r#"{{"fingerprint":"{ID}","name":"bob","identity_key":"x"}}"#),
        ] {
            assert_eq!(parse(&bad, None).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
