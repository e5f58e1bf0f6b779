//! `retalk add NAME ID [--pin KEY]`: save a peer under a local name.

use super::Ctx;
use crate::args::AddArgs;
use crate::error::CliError;
use crate::output;
use retalk::proto::IdentityKey;

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
pub async fn run(ctx: &Ctx<'_>, args: &AddArgs) -> Result<(), CliError> {
    check_peer_name(&args.name)?;
    let id = normalize_id(&args.id)?;
    if let Some(pin) = &args.pin {
        check_pin(pin)?;
    }
    let opened = ctx.open(true).await?;
    opened
        .identity
        .add_peer(&args.name, &id, args.pin.as_deref())?;
    let pinned = if args.pin.is_some() {
        " (identity key pinned)"
    } else {
        ""
    };
    output::note(&format!(
        "saved peer {} = {id}{pinned}",
        output::one_line(&args.name)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
