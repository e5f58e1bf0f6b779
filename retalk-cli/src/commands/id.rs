//! `retalk id`: print the user id (or the public identity as JSON).

use super::Ctx;
use crate::args::IdArgs;
use crate::error::CliError;
use crate::output::{json_line, IdentityJson, Lines};

/// Runs `retalk id`.
pub async fn run(ctx: &Ctx<'_>, args: &IdArgs) -> Result<(), CliError> {
    let opened = ctx.open(false).await?;
    let me = &opened.identity;
    let mut out = Lines::stdout();
    let id = me.user_id();
    if args.json {
        out.line(&json_line(&IdentityJson {
            user_id: &id,
            identity_key: &me.identity_key(),
            signing_key: &me.signing_key(),
            name: &me.name(),
        }))
    } else {
        out.line(&id)
    }
}
