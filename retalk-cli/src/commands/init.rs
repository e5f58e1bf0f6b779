//! `retalk init`: create an identity and print its id (and only its id) on
//! stdout.

use super::Ctx;
use crate::args::InitArgs;
use crate::backend;
use crate::error::CliError;
use crate::identity::{self, shell_word, Source};
use crate::output::{self, Lines};
use crate::secret::Purpose;

/// Longest accepted display name, in characters.
pub const MAX_NAME: usize = 64;

/// Checks a self-chosen display name: printable, at most [`MAX_NAME`]
/// characters. Empty means "no name".
pub fn check_display_name(name: &str) -> Result<(), CliError> {
    if name.chars().any(char::is_control) {
        return Err(
            CliError::usage("--name must not contain control characters")
                .hint("use a short printable name such as `alice` or `build-bot`"),
        );
    }
    if name.chars().count() > MAX_NAME {
        return Err(
            CliError::usage(format!("--name is longer than {MAX_NAME} characters"))
                .hint("use a short name; peers see it as ~NAME next to each message"),
        );
    }
    Ok(())
}

/// Runs `retalk init`.
pub async fn run(ctx: &Ctx<'_>, args: &InitArgs) -> Result<(), CliError> {
    let located = identity::init_location(args.dir.as_deref(), &ctx.global.selection(), ctx.env)?;
    let dir = &located.dir;
    if backend::exists(dir) {
        let use_it = match &located.source {
            Source::UserLevel(n) if n == identity::DEFAULT_USER => "-u".to_string(),
            Source::UserLevel(n) => format!("-u {n}"),
            _ => format!("-s {}", shell_word(dir)),
        };
        return Err(
            CliError::refusal(format!("an identity already exists at {}", dir.display())).hint(
                format!(
                    "use it with `retalk {use_it} ...`, or choose another location; \
             init never overwrites an identity"
                ),
            ),
        );
    }
    let name = args.name.as_deref().unwrap_or("");
    check_display_name(name)?;
    let relay = ctx.relay_override()?;
    let pass = ctx.passphrase(Purpose::Create)?;
    let me = backend::create(dir, pass.expose(), name, relay.as_deref()).await?;
    let id = me.user_id();
    let shown = if name.is_empty() {
        String::new()
    } else {
        format!(" {}", output::one_line(name))
    };
    output::note(&format!(
        "created identity{shown} at {}; share its user id (below) with peers over a \
         channel the relay does not control",
        dir.display()
    ));
    match me.relay_url() {
        Some(url) => output::note(&format!("relay saved: {url}")),
        None => output::note(
            "no relay saved: later commands need --server URL or SERVER_URL \
             (or run init again elsewhere with --server)",
        ),
    }
    Lines::stdout().line(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert!(check_display_name("").is_ok());
        assert!(check_display_name("alice-1 ✓").is_ok());
        assert!(check_display_name("a\nb").is_err());
        assert!(check_display_name("\x1b[31m").is_err());
        assert!(check_display_name(&"x".repeat(MAX_NAME)).is_ok());
        assert!(check_display_name(&"x".repeat(MAX_NAME + 1)).is_err());
    }
}
