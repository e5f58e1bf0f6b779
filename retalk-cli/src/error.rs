//! Errors as the user sees them, and the exit code each one maps to.
//!
//! Every failure leaves the process as `retalk: <what went wrong>` on stderr,
//! optionally followed by `hint: <how to fix it>`, and one of three exit
//! codes:
//!
//! * 0: success;
//! * 2: usage error or refusal: bad arguments, no identity, wrong passphrase,
//!   unknown peer, `PIN MISMATCH`, no relay URL. Retrying the same command
//!   will fail the same way; a person has to change something;
//! * 1: anything else: relay unreachable or failing, I/O errors. Retrying
//!   later may succeed.

use std::fmt;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for failures that may go away on a retry (relay down, I/O).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for usage errors and refusals.
pub const EXIT_REFUSAL: i32 = 2;
/// Exit code for refusals by the relay that no retry fixes (wrong URL or
/// audience, message too large, unknown recipient).
pub const EXIT_PERMANENT: i32 = 3;

/// Which of the exit-code classes an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The command line itself is wrong (exit 2).
    Usage,
    /// The request is well formed but refused: no identity, wrong passphrase,
    /// unknown peer, key mismatch (exit 2).
    Refusal,
    /// Something outside the user's control failed (exit 1).
    Failure,
    /// The relay refused for good: retrying the same command cannot help
    /// (exit 3).
    Permanent,
}

/// An error on its way to stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The exit-code class.
    pub kind: Kind,
    /// What went wrong, one line, no `retalk:` prefix.
    pub message: String,
    /// How to fix it, if we know.
    pub hint: Option<String>,
}

impl CliError {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    /// A refusal (exit 2).
    pub fn refusal(message: impl Into<String>) -> Self {
        Self::new(Kind::Refusal, message)
    }

    /// A relay refusal no retry fixes (exit 3).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(Kind::Permanent, message)
    }

    /// A failure that may go away on retry (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(Kind::Failure, message)
    }

    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Attaches a hint at the fix.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Usage | Kind::Refusal => EXIT_REFUSAL,
            Kind::Failure => EXIT_FAILURE,
            Kind::Permanent => EXIT_PERMANENT,
        }
    }

    /// True when retrying later might succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == Kind::Failure
    }

    /// The text written to stderr, without a trailing newline.
    pub fn render(&self) -> String {
        // Messages quote relay answers and other untrusted text: each part
        // stays one line, control and direction characters escaped.
        let message = crate::output::one_line(&self.message);
        match &self.hint {
            Some(h) => format!("retalk: {message}\nhint: {}", crate::output::one_line(h)),
            None => format!("retalk: {message}"),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(CliError::usage("x").exit_code(), 2);
        assert_eq!(CliError::refusal("x").exit_code(), 2);
        assert_eq!(CliError::failure("x").exit_code(), 1);
        assert!(CliError::failure("x").is_transient());
        assert!(!CliError::refusal("x").is_transient());
    }

    #[test]
    fn render_prefixes_and_adds_the_hint_on_its_own_line() {
        assert_eq!(CliError::refusal("no").render(), "retalk: no");
        assert_eq!(
            CliError::refusal("no identity at x")
                .hint("run init")
                .render(),
            "retalk: no identity at x\nhint: run init"
        );
    }
}
