//! Which relay a command talks to: `--server URL`, else `SERVER_URL`, else
//! `RETALK_RELAY`, else the URL saved in the identity at `init`.
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

/// The error for a command that needs a relay when none is known.
pub fn missing() -> CliError {
    CliError::refusal("no relay URL for this identity")
        .hint("pass --server URL, set SERVER_URL, or save one with `retalk init ... --server URL`")
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
