//! Which identity directory a command acts on.
//!
//! First match wins:
//!
//! 1. `-s/--store DIR`;
//! 2. `-u/--user-level [NAME]`: `$XDG_DATA_HOME/retalk/NAME` (or
//!    `$HOME/.local/share/retalk/NAME`), NAME defaulting to `default`;
//! 3. the `STORE` environment variable;
//! 4. the user-level `default` identity, if it exists.
//!
//! Anything else is an error, and nothing is ever created by this lookup:
//! only `retalk init` creates identities, and it needs an explicit location.

use crate::env::{self, Env};
use crate::error::CliError;
use std::fmt;
use std::path::{Path, PathBuf};

/// The name `-u` uses when given without a value.
pub const DEFAULT_USER: &str = "default";

/// The identity-selection options shared by every command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `-s/--store DIR`.
    pub store: Option<PathBuf>,
    /// `-u/--user-level [NAME]` (`Some("default")` when given bare).
    pub user_level: Option<String>,
}

/// Where the chosen directory came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-s DIR`, or the DIR argument of `init`.
    Flag,
    /// `-u NAME`.
    UserLevel(String),
    /// The `STORE` environment variable.
    StoreEnv,
    /// The user-level `default` identity, picked because it exists.
    DefaultUserLevel,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("-s"),
            Source::UserLevel(n) => write!(f, "-u {n}"),
            Source::StoreEnv => f.write_str("the STORE environment variable"),
            Source::DefaultUserLevel => f.write_str("the user-level default identity"),
        }
    }
}

/// A resolved identity directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The directory holding the identity.
    pub dir: PathBuf,
    /// How it was chosen.
    pub source: Source,
}

/// The directory holding user-level identities: `$XDG_DATA_HOME/retalk`, or
/// `$HOME/.local/share/retalk` when XDG_DATA_HOME is unset or not absolute
/// (the XDG spec says to ignore relative values).
pub fn data_home(env: &dyn Env) -> Result<PathBuf, CliError> {
    if let Some(x) = env.get(env::XDG_DATA_HOME) {
        let p = PathBuf::from(x);
        if p.is_absolute() {
            return Ok(p.join("retalk"));
        }
    }
    match env.get(env::HOME) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/retalk")),
        None => Err(CliError::usage(
            "cannot locate user-level identities: neither XDG_DATA_HOME nor HOME is set",
        )
        .hint("set HOME, or name the identity directory with -s DIR")),
    }
}

/// The folder of 0.3.x's named identities and owner-wide files:
/// `$RETALK_HOME`, else `~/.retalk`.
pub fn retalk_home(env: &dyn Env) -> Option<PathBuf> {
    env.get(env::RETALK_HOME)
        .map(PathBuf::from)
        .or_else(|| env.get(env::HOME).map(|h| PathBuf::from(h).join(".retalk")))
}

/// The owner-wide contact list (`$RETALK_HOME/contacts.db`, 0.3.x's).
pub fn global_contacts(env: &dyn Env) -> Result<retalk::GlobalContacts, CliError> {
    retalk_home(env)
        .map(|h| retalk::GlobalContacts::in_home(&h))
        .ok_or_else(|| {
            CliError::usage(
                "cannot locate the global contacts: neither RETALK_HOME nor HOME is set",
            )
            .hint("set RETALK_HOME or HOME, or select an identity with -u NAME / --dir DIR")
        })
}

/// Checks a `-u` NAME: one plain path component.
pub fn check_user_name(name: &str) -> Result<(), CliError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    if plain {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "'{}' is not a usable identity name for -u",
            name.escape_debug()
        ))
        .hint("use a plain name such as `work` (no slashes); for a path, use -s DIR"))
    }
}

/// The directory of the user-level identity NAME. `$RETALK_HOME/NAME` when
/// RETALK_HOME is set (retalk 0.3.x); otherwise whichever of `~/.retalk/NAME`
/// (0.3.x) and `$XDG_DATA_HOME/retalk/NAME` (0.0.1 and this CLI before 0.3
/// compatibility) holds an identity, in that order; for a new identity the
/// XDG location when XDG_DATA_HOME is set, else `~/.retalk/NAME`.
pub fn user_level_dir(
    env: &dyn Env,
    name: &str,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<PathBuf, CliError> {
    check_user_name(name)?;
    if let Some(h) = env.get(env::RETALK_HOME) {
        return Ok(PathBuf::from(h).join(name));
    }
    let dot = env
        .get(env::HOME)
        .map(|h| PathBuf::from(h).join(".retalk").join(name));
    let xdg = data_home(env).ok().map(|d| d.join(name));
    for d in [&dot, &xdg].into_iter().flatten() {
        if exists(d) {
            return Ok(d.clone());
        }
    }
    let xdg_set = env
        .get(env::XDG_DATA_HOME)
        .is_some_and(|x| Path::new(&x).is_absolute());
    match (xdg_set, xdg, dot) {
        (true, Some(x), _) => Ok(x),
        (_, _, Some(d)) => Ok(d),
        (_, Some(x), None) => Ok(x),
        _ => data_home(env).map(|d| d.join(name)),
    }
}

/// The most recently created named identity (`retalk id --last`), among
/// `$RETALK_HOME` (else `~/.retalk`) and the XDG location: the one whose
/// store file is newest.
pub fn latest(env: &dyn Env, exists: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let mut homes = Vec::new();
    match env.get(env::RETALK_HOME) {
        Some(h) => homes.push(PathBuf::from(h)),
        None => homes.extend(env.get(env::HOME).map(|h| PathBuf::from(h).join(".retalk"))),
    }
    homes.extend(data_home(env).ok());
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for home in homes {
        let Ok(rd) = std::fs::read_dir(&home) else {
            continue;
        };
        for entry in rd.flatten() {
            let dir = entry.path();
            if !exists(&dir) {
                continue;
            }
            let stamp = ["retalk.db", "store.db"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .filter_map(|m| m.created().or_else(|_| m.modified()).ok())
                .max();
            if let Some(t) = stamp {
                if best.as_ref().is_none_or(|(b, _)| t > *b) {
                    best = Some((t, dir));
                }
            }
        }
    }
    best.map(|(_, d)| d)
}

/// Finds the existing identity a command acts on. `exists` tells whether a
/// directory holds an identity (`User::exists`).
pub fn locate(
    sel: &Selection,
    env: &dyn Env,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Located, CliError> {
    let located = if let Some(dir) = &sel.store {
        Located {
            dir: dir.clone(),
            source: Source::Flag,
        }
    } else if let Some(name) = &sel.user_level {
        Located {
            dir: user_level_dir(env, name, exists)?,
            source: Source::UserLevel(name.clone()),
        }
    } else if let Some(dir) = env.get(env::STORE) {
        Located {
            dir: PathBuf::from(dir),
            source: Source::StoreEnv,
        }
    } else if let Some(name) = env.get(env::RETALK_USER) {
        Located {
            dir: user_level_dir(env, &name, exists)?,
            source: Source::UserLevel(name),
        }
    } else {
        let default = user_level_dir(env, DEFAULT_USER, exists)
            .ok()
            .filter(|d| exists(d));
        match default {
            Some(dir) => Located {
                dir,
                source: Source::DefaultUserLevel,
            },
            None => {
                return Err(CliError::refusal(
                    "no identity selected (no user selected): pass --user NAME (-u NAME), \
                     set RETALK_USER, or pass --dir DIR",
                )
                .hint("STORE=DIR works too; or create the default identity with `retalk init -u`"))
            }
        }
    };
    if !exists(&located.dir) {
        let create = match &located.source {
            Source::UserLevel(n) if n == DEFAULT_USER => "retalk init -u".to_string(),
            Source::UserLevel(n) => format!("retalk init -u {n}"),
            _ => format!("retalk init {}", shell_word(&located.dir)),
        };
        let via = match &located.source {
            Source::StoreEnv => " (from STORE)",
            _ => "",
        };
        return Err(
            CliError::refusal(format!("no identity at {}{via}", located.dir.display())).hint(
                format!(
            "create one with `{create}`, or check the path (only `retalk init` creates identities)"
        ),
            ),
        );
    }
    Ok(located)
}

/// Where `retalk init` creates the new identity: its DIR argument, `-s DIR`,
/// or `-u [NAME]`. Deliberately not STORE nor the implicit default: creating
/// an identity should be an explicit act.
pub fn init_location(
    positional: Option<&Path>,
    sel: &Selection,
    env: &dyn Env,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Located, CliError> {
    match (positional, sel.store.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(CliError::usage(format!(
                "two locations given: {} and -s {}",
                a.display(),
                b.display()
            ))
            .hint("give the directory once"))
        }
        (Some(dir), _) | (None, Some(dir)) => {
            return Ok(Located {
                dir: dir.to_path_buf(),
                source: Source::Flag,
            })
        }
        (None, None) => {}
    }
    match sel.user_level.clone().or_else(|| env.get(env::RETALK_USER)) {
        Some(name) => Ok(Located {
            dir: user_level_dir(env, &name, exists)?,
            source: Source::UserLevel(name),
        }),
        None => Err(CliError::usage(
            "no user selected: init needs a location for the new identity",
        )
        .hint(
            "give a directory (`retalk init ./alice` or --dir DIR), a user-level name \
                 (`retalk init -u` or `retalk init -u work`), or set RETALK_USER",
        )),
    }
}

/// A path as a user could paste it into a shell: quoted when it has spaces
/// or shell metacharacters.
pub fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c));
    if safe {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;
    use std::collections::HashSet;

    fn exists_in(set: &[&str]) -> impl Fn(&Path) -> bool {
        let set: HashSet<PathBuf> = set.iter().map(PathBuf::from).collect();
        move |p: &Path| set.contains(p)
    }

    fn sel(store: Option<&str>, user: Option<&str>) -> Selection {
        Selection {
            store: store.map(PathBuf::from),
            user_level: user.map(str::to_string),
        }
    }

    #[test]
    fn data_home_prefers_absolute_xdg_then_home() {
        let e = MapEnv::of(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(data_home(&e).unwrap(), PathBuf::from("/x/retalk"));
        let e = MapEnv::of(&[("XDG_DATA_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(
            data_home(&e).unwrap(),
            PathBuf::from("/h/.local/share/retalk")
        );
        let e = MapEnv::of(&[("HOME", "/h")]);
        assert_eq!(
            data_home(&e).unwrap(),
            PathBuf::from("/h/.local/share/retalk")
        );
        assert!(data_home(&MapEnv::default()).is_err());
    }

    #[test]
    fn first_match_wins() {
        let env = MapEnv::of(&[("XDG_DATA_HOME", "/d"), ("STORE", "/env")]);
        let all = exists_in(&["/flag", "/d/retalk/work", "/env", "/d/retalk/default"]);
        let l = locate(&sel(Some("/flag"), Some("work")), &env, &all).unwrap();
        assert_eq!((l.dir, l.source), (PathBuf::from("/flag"), Source::Flag));
        let l = locate(&sel(None, Some("work")), &env, &all).unwrap();
        assert_eq!(l.dir, PathBuf::from("/d/retalk/work"));
        assert_eq!(l.source, Source::UserLevel("work".into()));
        let l = locate(&sel(None, None), &env, &all).unwrap();
        assert_eq!((l.dir, l.source), (PathBuf::from("/env"), Source::StoreEnv));
        let env = MapEnv::of(&[("XDG_DATA_HOME", "/d")]);
        let l = locate(&sel(None, None), &env, &all).unwrap();
        assert_eq!(l.dir, PathBuf::from("/d/retalk/default"));
        assert_eq!(l.source, Source::DefaultUserLevel);
    }

    #[test]
    fn bare_user_level_means_default() {
        let env = MapEnv::of(&[("HOME", "/h")]);
        let l = locate(
            &sel(None, Some(DEFAULT_USER)),
            &env,
            &exists_in(&["/h/.local/share/retalk/default"]),
        )
        .unwrap();
        assert_eq!(l.dir, PathBuf::from("/h/.local/share/retalk/default"));
    }

    #[test]
    fn nothing_selected_and_no_default_is_a_refusal() {
        let env = MapEnv::of(&[("HOME", "/h")]);
        let e = locate(&sel(None, None), &env, &exists_in(&[])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.hint.unwrap().contains("retalk init -u"));
        // An empty STORE is unset.
        let env = MapEnv::of(&[("HOME", "/h"), ("STORE", "")]);
        assert!(locate(&sel(None, None), &env, &exists_in(&[])).is_err());
    }

    #[test]
    fn a_selected_but_missing_identity_is_not_replaced_by_the_default() {
        let env = MapEnv::of(&[("HOME", "/h")]);
        let only_default = exists_in(&["/h/.local/share/retalk/default"]);
        let e = locate(&sel(Some("./typo"), None), &env, &only_default).unwrap_err();
        assert_eq!(e.message, "no identity at ./typo");
        assert!(e.hint.as_deref().unwrap().contains("retalk init ./typo"));
        let e = locate(&sel(None, Some("work")), &env, &only_default).unwrap_err();
        assert!(e.hint.as_deref().unwrap().contains("retalk init -u work"));
        let env = MapEnv::of(&[("HOME", "/h"), ("STORE", "/nope")]);
        let e = locate(&sel(None, None), &env, &only_default).unwrap_err();
        assert_eq!(e.message, "no identity at /nope (from STORE)");
    }

    #[test]
    fn existing_identities_are_found_in_both_homes() {
        let env = MapEnv::of(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x")]);
        let l = locate(&sel(None, Some("a")), &env, &exists_in(&["/h/.retalk/a"])).unwrap();
        assert_eq!(l.dir, PathBuf::from("/h/.retalk/a"));
        let l = locate(&sel(None, Some("a")), &env, &exists_in(&["/x/retalk/a"])).unwrap();
        assert_eq!(l.dir, PathBuf::from("/x/retalk/a"));
        let env = MapEnv::of(&[("HOME", "/h"), ("RETALK_USER", "a")]);
        let l = locate(&sel(None, None), &env, &exists_in(&["/h/.retalk/a"])).unwrap();
        assert_eq!(l.dir, PathBuf::from("/h/.retalk/a"));
    }

    #[test]
    fn user_level_names_must_be_plain() {
        let env = MapEnv::of(&[("HOME", "/h")]);
        for bad in ["", ".", "..", "a/b", "../x", "a\nb"] {
            let e = locate(&sel(None, Some(bad)), &env, &exists_in(&[])).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        assert!(check_user_name("work-2.bot").is_ok());
    }

    #[test]
    fn init_needs_an_explicit_location() {
        let none = exists_in(&[]);
        let env = MapEnv::of(&[("HOME", "/h"), ("STORE", "/env")]);
        assert!(init_location(None, &sel(None, None), &env, &none).is_err());
        let l = init_location(Some(Path::new("./a")), &sel(None, None), &env, &none).unwrap();
        assert_eq!(l.dir, PathBuf::from("./a"));
        let l = init_location(None, &sel(Some("./b"), None), &env, &none).unwrap();
        assert_eq!(l.dir, PathBuf::from("./b"));
        let l = init_location(None, &sel(None, Some("default")), &env, &none).unwrap();
        assert_eq!(l.dir, PathBuf::from("/h/.retalk/default"));
        let x = MapEnv::of(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x")]);
        let l = init_location(None, &sel(None, Some("w")), &x, &none).unwrap();
        assert_eq!(
            l.dir,
            PathBuf::from("/x/retalk/w"),
            "0.0.1 scripts set XDG_DATA_HOME"
        );
        let r = MapEnv::of(&[
            ("HOME", "/h"),
            ("RETALK_HOME", "/r"),
            ("XDG_DATA_HOME", "/x"),
        ]);
        let l = init_location(None, &sel(None, Some("w")), &r, &none).unwrap();
        assert_eq!(l.dir, PathBuf::from("/r/w"));
        let u = MapEnv::of(&[("HOME", "/h"), ("RETALK_USER", "bob")]);
        let l = init_location(None, &sel(None, None), &u, &none).unwrap();
        assert_eq!(l.dir, PathBuf::from("/h/.retalk/bob"));
        // DIR wins over -u; two different directories are a usage error.
        let l = init_location(Some(Path::new("./a")), &sel(None, Some("w")), &env, &none).unwrap();
        assert_eq!(l.dir, PathBuf::from("./a"));
        assert!(
            init_location(Some(Path::new("./a")), &sel(Some("./b"), None), &env, &none).is_err()
        );
        assert!(
            init_location(Some(Path::new("./a")), &sel(Some("./a"), None), &env, &none).is_ok()
        );
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word(Path::new("./alice")), "./alice");
        assert_eq!(shell_word(Path::new("my dir")), "'my dir'");
        assert_eq!(shell_word(Path::new("it's")), r"'it'\''s'");
    }
}
