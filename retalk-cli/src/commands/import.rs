//! `retalk import [CARD|-] [--as NAME] [--override]`: save a contact from
//! its card, the JSON `retalk id --json` (or 0.3.x `contacts --show`)
//! prints: `{"fingerprint", "name", "identity_key", "signing_key", ...}`.

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

Examples:
  retalk id --json -u bob > bob.card      on Bob's side
  retalk import \"$(cat bob.card)\" -u alice
  retalk import - --as bobby -u alice < bob.card

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

/// Runs `retalk import`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
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
