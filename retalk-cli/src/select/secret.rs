//! Where the passphrase that unlocks an identity comes from.
//!
//! First match wins:
//!
//! 0. `-p/--passphrase SECRET` (0.3.x; visible to other local users in the
//!    process list: prefer a file), or `--no-passphrase`;
//! 1. `--passphrase-file PATH` (alias `--passphrase-path`), else
//!    `RETALK_PASSPHRASE_FILE`: the first line of that file (line break
//!    removed), so the secret stays out of argv and the environment;
//! 2. `PICKLE_SECRET` (the reference's name);
//! 3. `RETALK_PASSPHRASE`;
//! 4. a prompt on the terminal, without echo, when there is a terminal;
//! 5. otherwise an error: a script never hangs on a prompt nobody sees.
//!
//! The passphrase is never printed, logged or put into an error message.

use crate::env::{self, Env};
use crate::error::CliError;
use std::io;
use std::path::Path;

/// Where a passphrase was found, for tests and messages (never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--passphrase-file`.
    File,
    /// `PICKLE_SECRET`.
    PickleSecret,
    /// `RETALK_PASSPHRASE`.
    RetalkPassphrase,
    /// Typed at the prompt.
    Prompt,
    /// `-p/--passphrase` on the command line.
    Inline,
    /// `--no-passphrase`.
    Disabled,
}

/// A passphrase. Its `Debug` output hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase {
    value: String,
    /// Where it came from.
    pub origin: Origin,
}

impl Passphrase {
    /// The secret itself, to hand to the library.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Passphrase({:?}, <hidden>)", self.origin)
    }
}

/// Why the passphrase is needed, which shapes the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Unlocking an existing identity.
    Unlock,
    /// Choosing the passphrase of a new identity (asked twice).
    Create,
}

/// How to ask a person; the real one uses rpassword on the terminal.
pub trait Prompter {
    /// True when someone can answer a prompt.
    fn interactive(&self) -> bool;
    /// Asks without echo.
    fn ask(&mut self, prompt: &str) -> io::Result<String>;
}

/// Prompts on the controlling terminal (`/dev/tty`) without echo. Used only
/// when stdin or stderr is a terminal, so a cron job or a pipeline with no
/// terminal gets an error instead of a hang.
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn interactive(&self) -> bool {
        use std::io::IsTerminal;
        io::stdin().is_terminal() || io::stderr().is_terminal()
    }

    fn ask(&mut self, prompt: &str) -> io::Result<String> {
        rpassword::prompt_password(prompt)
    }
}

/// Reads the passphrase from a file: its first line, without the line
/// break. (0.3.0 uses the whole file minus trailing line breaks; the two
/// agree on every one-line file.) Missing, unreadable and empty files are
/// errors, never a silent fall-through to another source. Warns on stderr
/// when the file is readable by group or others.
pub fn read_file(path: &Path, warn: &mut dyn FnMut(&str)) -> Result<String, CliError> {
    let shown = path.display();
    let raw = std::fs::read(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            // 0.3.x's wording, which scripts look for
            return CliError::usage(format!("no passphrase file at {shown} (it does not exist)"))
                .hint("check the path given to --passphrase-file");
        }
        let what = match e.kind() {
            io::ErrorKind::PermissionDenied => "is not readable (permission denied)".to_string(),
            _ if path.is_dir() => "is a directory".to_string(),
            _ => format!("cannot be read ({e})"),
        };
        CliError::usage(format!("the passphrase file {shown} {what}"))
            .hint("check the path given to --passphrase-file")
    })?;
    let text = String::from_utf8(raw).map_err(|_| {
        CliError::usage(format!("the passphrase file {shown} is not UTF-8 text"))
            .hint("write the passphrase as plain text on the first line")
    })?;
    // The first line, as the help says: a trailing comment or second line
    // (an editor's, a note) never becomes part of the secret.
    let secret = text.split('\n').next().unwrap_or("").trim_end_matches('\r');
    if secret.is_empty() {
        return Err(
            CliError::usage(format!("the passphrase file {shown} is empty"))
                .hint("write the passphrase on its first line"),
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warn(&format!(
                    "warning: the passphrase file {shown} is readable by other users \
                     (mode {mode:o}); fix with: chmod 600 {}",
                    crate::select::identity::shell_word(path)
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = warn;
    Ok(secret.to_string())
}

/// The passphrase of identities made with `--no-passphrase`: public, the
/// same as retalk 0.3.0's, so the keys are protected only by the folder's
/// permissions.
pub const NO_PASSPHRASE: &str = "\0retalk:disabled-passphrase";

/// The passphrase of an identity recorded as made with `--no-passphrase`.
pub fn unprotected() -> Passphrase {
    Passphrase {
        value: NO_PASSPHRASE.to_owned(),
        origin: Origin::Disabled,
    }
}

/// Finds the passphrase: `-p` (inline), then `--no-passphrase`, then the
/// sources of [`obtain`].
pub fn choose(
    inline: Option<&str>,
    none: bool,
    file: Option<&Path>,
    env: &dyn Env,
    purpose: Purpose,
    prompter: &mut dyn Prompter,
    warn: &mut dyn FnMut(&str),
) -> Result<Passphrase, CliError> {
    if let Some(p) = inline.filter(|p| !p.is_empty()) {
        return Ok(Passphrase {
            value: p.to_owned(),
            origin: Origin::Inline,
        });
    }
    if none {
        return Ok(unprotected());
    }
    obtain(file, env, purpose, prompter, warn)
}

/// Finds the passphrase (see the module docs for the order).
pub fn obtain(
    file: Option<&Path>,
    env: &dyn Env,
    purpose: Purpose,
    prompter: &mut dyn Prompter,
    warn: &mut dyn FnMut(&str),
) -> Result<Passphrase, CliError> {
    let env_file = env
        .get(env::RETALK_PASSPHRASE_FILE)
        .map(std::path::PathBuf::from);
    if let Some(path) = file.or(env_file.as_deref()) {
        return Ok(Passphrase {
            value: read_file(path, warn)?,
            origin: Origin::File,
        });
    }
    for (var, origin) in [
        (env::PICKLE_SECRET, Origin::PickleSecret),
        (env::RETALK_PASSPHRASE, Origin::RetalkPassphrase),
    ] {
        if let Some(value) = env.get(var) {
            return Ok(Passphrase { value, origin });
        }
    }
    if !prompter.interactive() {
        return Err(
            CliError::usage("no passphrase given and no terminal to ask on")
                .hint("set PICKLE_SECRET or RETALK_PASSPHRASE, or pass --passphrase-file PATH"),
        );
    }
    let io_err = |e: io::Error| {
        CliError::usage(format!(
            "could not read the passphrase from the terminal: {e}"
        ))
        .hint("set PICKLE_SECRET or RETALK_PASSPHRASE, or pass --passphrase-file PATH")
    };
    let value = match purpose {
        Purpose::Unlock => prompter
            .ask("passphrase (unlocks this identity): ")
            .map_err(io_err)?,
        Purpose::Create => {
            let first = prompter
                .ask("choose a passphrase for the new identity: ")
                .map_err(io_err)?;
            if first.is_empty() {
                return Err(CliError::usage("the passphrase is empty")
                    .hint("choose a non-empty passphrase; it encrypts your private keys"));
            }
            let again = prompter.ask("repeat it to confirm: ").map_err(io_err)?;
            if again != first {
                return Err(CliError::usage("the two passphrases differ")
                    .hint("run the command again and type the same passphrase twice"));
            }
            first
        }
    };
    Ok(Passphrase {
        value,
        origin: Origin::Prompt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;

    struct Scripted {
        tty: bool,
        answers: Vec<&'static str>,
        asked: Vec<String>,
    }

    impl Prompter for Scripted {
        fn interactive(&self) -> bool {
            self.tty
        }
        fn ask(&mut self, prompt: &str) -> io::Result<String> {
            self.asked.push(prompt.to_string());
            if self.answers.is_empty() {
                Err(io::Error::other("no more answers"))
            } else {
                Ok(self.answers.remove(0).to_string())
            }
        }
    }

    fn scripted(tty: bool, answers: &[&'static str]) -> Scripted {
        Scripted {
            tty,
            answers: answers.to_vec(),
            asked: vec![],
        }
    }

    fn no_warn() -> impl FnMut(&str) {
        |w: &str| panic!("unexpected warning {w}")
    }

    #[test]
    fn order_is_file_then_pickle_secret_then_retalk_passphrase_then_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "from-file\n").unwrap();
        set_private(&f);
        let env = MapEnv::of(&[("PICKLE_SECRET", "pickle"), ("RETALK_PASSPHRASE", "rp")]);
        let mut p = scripted(true, &["typed"]);
        let got = obtain(Some(&f), &env, Purpose::Unlock, &mut p, &mut no_warn()).unwrap();
        assert_eq!((got.expose(), got.origin), ("from-file", Origin::File));
        let got = obtain(None, &env, Purpose::Unlock, &mut p, &mut no_warn()).unwrap();
        assert_eq!((got.expose(), got.origin), ("pickle", Origin::PickleSecret));
        let env = MapEnv::of(&[("PICKLE_SECRET", ""), ("RETALK_PASSPHRASE", "rp")]);
        let got = obtain(None, &env, Purpose::Unlock, &mut p, &mut no_warn()).unwrap();
        assert_eq!((got.expose(), got.origin), ("rp", Origin::RetalkPassphrase));
        let got = obtain(
            None,
            &MapEnv::default(),
            Purpose::Unlock,
            &mut p,
            &mut no_warn(),
        )
        .unwrap();
        assert_eq!((got.expose(), got.origin), ("typed", Origin::Prompt));
        assert!(p.asked[0].starts_with("passphrase"));
    }

    #[test]
    fn no_source_and_no_terminal_is_an_error_not_a_hang() {
        let mut p = scripted(false, &["never"]);
        let e = obtain(
            None,
            &MapEnv::default(),
            Purpose::Unlock,
            &mut p,
            &mut no_warn(),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.hint.unwrap().contains("PICKLE_SECRET"));
        assert!(p.asked.is_empty());
    }

    #[test]
    fn creating_asks_twice_and_refuses_mismatch_or_empty() {
        let env = MapEnv::default();
        let mut p = scripted(true, &["a", "a"]);
        let got = obtain(None, &env, Purpose::Create, &mut p, &mut no_warn()).unwrap();
        assert_eq!(got.expose(), "a");
        assert_eq!(p.asked.len(), 2);
        let mut p = scripted(true, &["a", "b"]);
        let e = obtain(None, &env, Purpose::Create, &mut p, &mut no_warn()).unwrap_err();
        assert!(e.message.contains("differ"));
        let mut p = scripted(true, &[""]);
        assert!(obtain(None, &env, Purpose::Create, &mut p, &mut no_warn()).is_err());
    }

    #[test]
    fn files_strip_trailing_line_breaks_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, " two words \r\n\n").unwrap();
        set_private(&f);
        assert_eq!(read_file(&f, &mut no_warn()).unwrap(), " two words ");
    }

    #[test]
    fn bad_files_are_errors_that_never_show_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = read_file(&missing, &mut no_warn()).unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(read_file(&empty, &mut no_warn())
            .unwrap_err()
            .message
            .contains("empty"));
        let e = read_file(dir.path(), &mut no_warn()).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_files_warn_but_work() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut warnings = vec![];
        let got = read_file(&f, &mut |w: &str| warnings.push(w.to_string())).unwrap();
        assert_eq!(got, "s3cret");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("chmod 600"));
        assert!(!warnings[0].contains("s3cret"));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let p = Passphrase {
            value: "hunter2".into(),
            origin: Origin::PickleSecret,
        };
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    fn set_private(_f: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(_f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}
