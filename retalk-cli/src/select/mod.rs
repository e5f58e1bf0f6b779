//! Which identity acts, with which passphrase, through which relay: the
//! rules every front end shares (the CLI today; an MCP server or web view
//! later), kept apart from clap.
//!
//! * [`identity`]: the identity directory (`-s/--dir`, `-u/--user`, STORE,
//!   RETALK_USER, RETALK_HOME, the XDG location);
//! * [`secret`]: the passphrase (`-p`, `--no-passphrase`, files, variables,
//!   prompt);
//! * [`relay`]: the relay URL (`--relay/--server`, SERVER_URL, RETALK_RELAY,
//!   the saved URL).

pub mod identity;
pub mod relay;
pub mod secret;
