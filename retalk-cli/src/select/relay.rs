//! Which relay a command talks to: `--server URL`, else `SERVER_URL`, else
//! `RETALK_RELAY`, else the URL saved in the identity at `init`, else the
//! owner-wide default in `$RETALK_HOME/config.json` (retalk 0.3.x's
//! `retalk config --relay URL`; `~/.retalk/config.json` without
//! RETALK_HOME).
//!
//! The URL is used exactly as given: the relay checks request signatures
//! against its public URL, so even a trailing slash matters.

use crate::env::{self, Env};
use crate::error::CliError;

/// Where the relay URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--server`.
    Flag,
    /// `SERVER_URL`.
    ServerUrl,
    /// `RETALK_RELAY`.
    RetalkRelay,
}

/// The relay URL that overrides the saved one for this invocation, if any.
pub fn override_url(
    flag: Option<&str>,
    env: &dyn Env,
) -> Result<Option<(String, Origin)>, CliError> {
    let found = match flag.filter(|f| !f.is_empty()) {
        Some(f) => Some((f.to_string(), Origin::Flag)),
        None => env
            .get(env::SERVER_URL)
            .map(|u| (u, Origin::ServerUrl))
            .or_else(|| env.get(env::RETALK_RELAY).map(|u| (u, Origin::RetalkRelay))),
    };
    match found {
        Some((url, origin)) => {
            check(&url, origin)?;
            Ok(Some((url, origin)))
        }
        None => Ok(None),
    }
}

/// Refuses what cannot be a relay URL: it must be `http://` or `https://`
/// followed by a host, without whitespace.
pub fn check(url: &str, origin: Origin) -> Result<(), CliError> {
    let from = match origin {
        Origin::Flag => "--server",
        Origin::ServerUrl => "SERVER_URL",
        Origin::RetalkRelay => "RETALK_RELAY",
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{from} is not a relay URL: '{}'",
            url.escape_debug()
        ))
        .hint(
            "use the relay's public URL, e.g. https://relay.example.com or http://127.0.0.1:8766",
        ))
    }
}

/// The owner-wide settings file of retalk 0.3.x: `$RETALK_HOME/config.json`,
/// else `~/.retalk/config.json`.
pub fn owner_config_path(env: &dyn Env) -> Option<std::path::PathBuf> {
    match env.get(env::RETALK_HOME).filter(|h| !h.is_empty()) {
        Some(h) => Some(std::path::PathBuf::from(h).join("config.json")),
        None => env
            .get(env::HOME)
            .filter(|h| !h.is_empty())
            .map(|h| std::path::PathBuf::from(h).join(".retalk/config.json")),
    }
}

/// The owner-wide settings (a JSON object); empty when the file is
/// missing or is not a JSON object (as 0.3.0).
pub fn owner_config(env: &dyn Env) -> serde_json::Map<String, serde_json::Value> {
    owner_config_path(env)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| match v {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

/// The owner-wide default relay URL (the `relay` key of config.json), the
/// last fallback after the flag, the variables and the identity's own. A
/// value that is not a relay URL is ignored rather than used.
pub fn owner_default(env: &dyn Env) -> Option<String> {
    owner_config(env)
        .get("relay")
        .and_then(|v| v.as_str())
        .filter(|u| check(u, Origin::Flag).is_ok())
        .map(str::to_string)
}

/// Writes the owner-wide settings (owner-only, 0600), creating the folder.
pub fn write_owner_config(
    env: &dyn Env,
    cfg: &serde_json::Map<String, serde_json::Value>,
) -> Result<std::path::PathBuf, CliError> {
    let path = owner_config_path(env).ok_or_else(|| {
        CliError::usage("cannot locate ~/.retalk/config.json: neither RETALK_HOME nor HOME is set")
    })?;
    let fail =
        |e: std::io::Error| CliError::refusal(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(cfg.clone()))
        .map_err(|e| CliError::refusal(format!("cannot encode the settings: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).map_err(fail)?;
        f.write_all(format!("{text}\n").as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(path)
}

/// The error for a command that needs a relay when none is known.
pub fn missing() -> CliError {
    CliError::refusal("no relay URL for this identity").hint(
        "pass --server URL, set SERVER_URL, save one with `retalk config -u NAME --relay URL`, \
             or set the default for every identity with `retalk config --relay URL`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;

    #[test]
    fn flag_then_server_url_then_retalk_relay() {
        let env = MapEnv::of(&[("SERVER_URL", "http://a:1"), ("RETALK_RELAY", "http://b:2")]);
        assert_eq!(
            override_url(Some("https://f"), &env).unwrap(),
            Some(("https://f".into(), Origin::Flag))
        );
        assert_eq!(
            override_url(None, &env).unwrap(),
            Some(("http://a:1".into(), Origin::ServerUrl))
        );
        let env = MapEnv::of(&[("SERVER_URL", ""), ("RETALK_RELAY", "http://b:2")]);
        assert_eq!(
            override_url(None, &env).unwrap(),
            Some(("http://b:2".into(), Origin::RetalkRelay))
        );
        assert_eq!(override_url(None, &MapEnv::default()).unwrap(), None);
    }

    #[test]
    fn urls_are_kept_verbatim_but_must_look_like_urls() {
        let env = MapEnv::default();
        assert_eq!(
            override_url(Some("http://127.0.0.1:8766/"), &env)
                .unwrap()
                .unwrap()
                .0,
            "http://127.0.0.1:8766/"
        );
        for bad in [
            "127.0.0.1:8766",
            "ftp://x",
            "http://",
            "http:///path",
            "http://a b",
        ] {
            let e = override_url(Some(bad), &env).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        let env = MapEnv::of(&[("SERVER_URL", "localhost")]);
        let e = override_url(None, &env).unwrap_err();
        assert!(e.message.starts_with("SERVER_URL"));
    }
}
