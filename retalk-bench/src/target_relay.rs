//! The relay a scenario runs against: one already running at a URL, or one
//! the scenario starts itself.

use std::io;
use std::path::{Path, PathBuf};

use crate::relay::{Kind, Managed, Memory};
use crate::wire::Relay;

/// Command-line options naming the relay under test.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// URL of a running relay to measure (loopback only), e.g.
    /// http://127.0.0.1:8766. Mutually exclusive with --spawn.
    #[arg(long, conflicts_with = "spawn")]
    pub relay: Option<String>,
    /// The audience the relay verifies signatures against, when it differs
    /// from --relay.
    #[arg(long)]
    pub audience: Option<String>,
    /// Process id of the relay at --relay, so memory can be read from /proc.
    #[arg(long)]
    pub relay_pid: Option<u32>,
    /// Start a relay of this kind on a free loopback port with a fresh
    /// database, and stop it afterwards.
    #[arg(long, value_enum)]
    pub spawn: Option<Kind>,
    /// The relay executable for --spawn: our `retalk-server` (default: the
    /// one next to this binary, i.e. target/release/retalk-server) or the
    /// Python reference's `retalk-server` script (required for python).
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    /// Directory for spawned relays' databases (default: the system temp
    /// directory). Put it on the disk you want to measure.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// The relay under test.
pub enum UnderTest {
    /// Running elsewhere; the benchmark only talks to it.
    External {
        /// How to address it.
        relay: Relay,
        /// Its pid, if given.
        pid: Option<u32>,
    },
    /// Started (and owned) by this benchmark.
    Managed(Managed),
}

/// Our relay binary: the `retalk-server` built beside this executable.
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

impl RelayArgs {
    /// Connects to or starts the relay these options name.
    pub async fn open(&self) -> io::Result<UnderTest> {
        match (&self.relay, self.spawn) {
            (Some(url), _) => Ok(UnderTest::External {
                relay: Relay::new(url, self.audience.as_deref()).map_err(io::Error::other)?,
                pid: self.relay_pid,
            }),
            (None, Some(kind)) => {
                let bin = match (&self.relay_bin, kind) {
                    (Some(b), _) => b.clone(),
                    (None, Kind::Ours) => sibling("retalk-server"),
                    (None, Kind::Python) => {
                        return Err(io::Error::other(
                            "--spawn python needs --relay-bin PATH/TO/venv/bin/retalk-server",
                        ))
                    }
                };
                Ok(UnderTest::Managed(
                    Managed::start(kind, &bin, self.work_dir.as_deref()).await?,
                ))
            }
            (None, None) => Err(io::Error::other(
                "name the relay: --relay URL (running) or --spawn ours|python (started here)",
            )),
        }
    }

    /// Options for spawning a fresh relay of `kind` from `bin`.
    pub fn spawning(kind: Kind, bin: &Path, work_dir: Option<&Path>) -> Self {
        RelayArgs {
            relay: None,
            audience: None,
            relay_pid: None,
            spawn: Some(kind),
            relay_bin: Some(bin.to_owned()),
            work_dir: work_dir.map(Path::to_owned),
        }
    }
}

impl UnderTest {
    /// How to address the relay.
    pub fn relay(&self) -> &Relay {
        match self {
            UnderTest::External { relay, .. } => relay,
            UnderTest::Managed(m) => &m.relay,
        }
    }

    /// The relay's memory, when its pid is known.
    pub fn memory(&self) -> Option<Memory> {
        match self {
            UnderTest::External { pid, .. } => pid.and_then(|p| crate::relay::memory(p).ok()),
            UnderTest::Managed(m) => m.memory().ok(),
        }
    }

    /// A label for reports.
    pub fn label(&self) -> String {
        match self {
            UnderTest::External { relay, .. } => relay.target.url.clone(),
            UnderTest::Managed(m) => m.kind.label().to_owned(),
        }
    }
}
