//! The `receive --follow` loop.
//!
//! * Messages are fetched with a held wait when the relay supports it (the
//!   relay answers the moment a message arrives), else by polling every
//!   `interval`.
//! * Key maintenance runs at start and then every `maintain_every`.
//! * A failing relay (restart, network loss) is ridden out: one line on
//!   stderr when the trouble starts, then retries with exponential backoff;
//!   after it answers again we re-check that it still knows our keys (a
//!   relay restarted on an empty database is healed) and whether it still
//!   supports waiting.
//! * Refusals (wrong passphrase, key mismatch, ...) end the loop: retrying
//!   cannot fix them.
//! * No message id is printed twice, even if the library were to surface one
//!   again.
//! * The `stop` future (SIGINT/SIGTERM) ends the loop at once, even during a
//!   held wait or a backoff sleep.

use crate::error::CliError;
use crate::output::{Batch, Problem, Received};
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// What the loop needs from an identity.
#[allow(async_fn_in_trait)]
pub trait Mailbox {
    /// Makes sure the relay has our public keys, republishing them if it
    /// forgot us.
    async fn heal(&mut self) -> Result<(), CliError>;
    /// Whether the relay holds `read_messages` open until mail arrives.
    async fn supports_wait(&mut self) -> Result<bool, CliError>;
    /// Reads and decrypts pending mail, holding up to `wait` if given.
    async fn fetch(&mut self, wait: Option<Duration>) -> Result<Batch, CliError>;
    /// Replenishes keys, rotates the fallback key, resends unacknowledged
    /// messages.
    async fn maintain(&mut self) -> Result<(), CliError>;
    /// A message was written out: it may be forgotten. Until then every
    /// fetch returns it again, so output that fails loses nothing.
    fn shown(&mut self, m: &Received) -> Result<(), CliError>;
}

/// Timing of the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Pause between polls when the relay cannot hold a wait.
    pub interval: Duration,
    /// How long to ask the relay to hold a read; `None` never waits.
    pub wait: Option<Duration>,
    /// How often to run key maintenance.
    pub maintain_every: Duration,
    /// First retry delay after a failure.
    pub backoff_start: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            wait: Some(Duration::from_secs(25)),
            maintain_every: Duration::from_secs(60),
            backoff_start: Duration::from_millis(500),
            backoff_max: Duration::from_secs(15),
        }
    }
}

/// Remembers the most recent message ids, to never print one twice.
pub struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
    cap: usize,
}

impl Seen {
    /// Remembers up to `cap` ids.
    pub fn new(cap: usize) -> Self {
        Self {
            order: VecDeque::new(),
            set: HashSet::new(),
            cap: cap.max(1),
        }
    }

    /// Whether `id` was offered before.
    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    /// True the first time an id is offered.
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() == self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.set.insert(id.to_string());
        true
    }
}

/// The stderr line for a delivery that could not be shown.
pub fn problem_line(p: &Problem) -> String {
    format!(
        "retalk: warning: a message from {} could not be read: {}",
        crate::output::one_line(&p.from),
        crate::output::one_line(&p.reason)
    )
}

/// Prints a batch: messages not seen before through `emit`, each confirmed
/// to the mailbox only once written (a failed write stops here and leaves
/// it and the rest for the next receive), problems through `log`. Returns
/// how many messages were printed.
pub fn deliver<M: Mailbox>(
    mb: &mut M,
    batch: &Batch,
    seen: &mut Seen,
    emit: &mut dyn FnMut(&Received) -> Result<(), CliError>,
    log: &mut dyn FnMut(&str),
) -> Result<usize, CliError> {
    let mut n = 0;
    for m in &batch.messages {
        let key = format!("{}/{}", m.from, m.id);
        if !seen.contains(&key) {
            emit(m)?;
            seen.first_time(&key);
            n += 1;
        }
        mb.shown(m)?;
    }
    for p in &batch.problems {
        log(&problem_line(p));
    }
    Ok(n)
}

/// An empty answer to a wait quicker than this was not held by the relay.
const INSTANT: Duration = Duration::from_secs(1);

struct State {
    setup_needed: bool,
    first_setup: bool,
    use_wait: bool,
    next_maintain: Instant,
    backoff: Option<Duration>,
}

/// One round: set up if needed, maintain if due, fetch.
async fn round<M: Mailbox>(
    mb: &mut M,
    cfg: &Config,
    st: &mut State,
    log: &mut dyn FnMut(&str),
) -> Result<(Batch, Duration), CliError> {
    if st.setup_needed {
        mb.heal().await?;
        st.use_wait = match cfg.wait {
            Some(_) => mb.supports_wait().await?,
            None => false,
        };
        st.setup_needed = false;
        if st.first_setup {
            st.first_setup = false;
            log(&if st.use_wait {
                "listening; the relay pushes messages as they arrive (stop with ctrl-c)".to_string()
            } else {
                format!(
                    "listening; polling the relay every {} (stop with ctrl-c)",
                    human(cfg.interval)
                )
            });
        }
    }
    if Instant::now() >= st.next_maintain {
        mb.maintain().await?;
        st.next_maintain = Instant::now() + cfg.maintain_every;
    }
    let started = Instant::now();
    let wait = if st.use_wait { cfg.wait } else { None };
    let batch = mb.fetch(wait).await?;
    Ok((batch, started.elapsed()))
}

/// A duration for people: `2s`, `500ms`, `1.5s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Runs until `stop` resolves (then `Ok`) or a refusal or output error
/// occurs (then `Err`).
pub async fn run<M: Mailbox>(
    mb: &mut M,
    cfg: &Config,
    emit: &mut dyn FnMut(&Received) -> Result<(), CliError>,
    log: &mut dyn FnMut(&str),
    stop: impl Future<Output = ()>,
) -> Result<(), CliError> {
    tokio::pin!(stop);
    let mut seen = Seen::new(4096);
    let mut st = State {
        setup_needed: true,
        first_setup: true,
        use_wait: false,
        next_maintain: Instant::now(),
        backoff: None,
    };
    loop {
        let result = tokio::select! {
            _ = &mut stop => return Ok(()),
            r = round(mb, cfg, &mut st, log) => r,
        };
        let pause = match result {
            Ok((batch, took)) => {
                st.backoff = None;
                let printed = deliver(mb, &batch, &mut seen, emit, log)?;
                if !st.use_wait {
                    cfg.interval
                } else if printed == 0 && batch.problems.is_empty() && took < INSTANT {
                    // A relay that answers an empty wait at once would make
                    // this loop spin; pace it like polling. A wait that was
                    // held (it ran its course, or ended on mail that shows
                    // nothing) is followed by the next wait at once: a pause
                    // there would delay the next message by up to the
                    // interval (35 s with --interval 60).
                    cfg.interval.saturating_sub(took)
                } else {
                    Duration::ZERO
                }
            }
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => {
                let delay = match st.backoff {
                    None => {
                        log(&format!(
                            "retalk: {}; retrying with backoff until it answers (stop with ctrl-c)",
                            crate::output::one_line(&e.message)
                        ));
                        cfg.backoff_start
                    }
                    Some(d) => d,
                };
                st.backoff = Some((delay * 2).min(cfg.backoff_max));
                st.setup_needed = true;
                delay
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Scripted relay: each fetch takes the next step; when the script is
    /// exhausted, fetch waits forever (the test's stop then ends the loop).
    #[derive(Default)]
    struct Fake {
        wait_supported: bool,
        script: VecDeque<Step>,
        heals: usize,
        maintains: usize,
        waits_asked: Vec<Option<Duration>>,
        fetch_times: Vec<Instant>,
        refuse_heal: bool,
        shown: Vec<String>,
    }

    enum Step {
        Mail(Vec<&'static str>),
        Down,
        Slow(Duration, Vec<&'static str>),
    }

    fn m(id: &str) -> Received {
        Received::chat(
            id.to_string(),
            "f".repeat(32),
            "bob".into(),
            format!("text {id}"),
        )
    }

    fn down() -> CliError {
        CliError::failure("relay unreachable at http://127.0.0.1:1: connection refused")
    }

    impl Mailbox for Fake {
        async fn heal(&mut self) -> Result<(), CliError> {
            self.heals += 1;
            if self.refuse_heal {
                return Err(CliError::refusal("PIN MISMATCH"));
            }
            // A relay that is down fails the heal too, consuming the step.
            if let Some(Step::Down) = self.script.front() {
                self.script.pop_front();
                return Err(down());
            }
            Ok(())
        }
        async fn supports_wait(&mut self) -> Result<bool, CliError> {
            Ok(self.wait_supported)
        }
        async fn fetch(&mut self, wait: Option<Duration>) -> Result<Batch, CliError> {
            self.waits_asked.push(wait);
            self.fetch_times.push(Instant::now());
            match self.script.pop_front() {
                Some(Step::Mail(ids)) => Ok(Batch {
                    messages: ids.into_iter().map(m).collect(),
                    problems: vec![],
                }),
                Some(Step::Slow(d, ids)) => {
                    tokio::time::sleep(d).await;
                    Ok(Batch {
                        messages: ids.into_iter().map(m).collect(),
                        problems: vec![],
                    })
                }
                Some(Step::Down) => Err(down()),
                None => std::future::pending().await,
            }
        }
        async fn maintain(&mut self) -> Result<(), CliError> {
            self.maintains += 1;
            Ok(())
        }
        fn shown(&mut self, m: &Received) -> Result<(), CliError> {
            self.shown.push(m.id.clone());
            Ok(())
        }
    }

    struct Run {
        printed: Vec<String>,
        logs: Vec<String>,
        result: Result<(), CliError>,
    }

    async fn go(fake: &mut Fake, cfg: &Config, stop_after: Duration) -> Run {
        let mut printed = vec![];
        let mut logs = vec![];
        let result = run(
            fake,
            cfg,
            &mut |r: &Received| {
                printed.push(r.id.clone());
                Ok(())
            },
            &mut |l: &str| logs.push(l.to_string()),
            tokio::time::sleep(stop_after),
        )
        .await;
        Run {
            printed,
            logs,
            result,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn uses_held_waits_when_the_relay_supports_them() {
        let mut f = Fake {
            wait_supported: true,
            script: VecDeque::from([
                Step::Slow(Duration::from_secs(3), vec!["a"]),
                Step::Slow(Duration::from_secs(25), vec![]),
                Step::Slow(Duration::from_secs(1), vec!["b", "c"]),
            ]),
            ..Default::default()
        };
        let r = go(&mut f, &Config::default(), Duration::from_secs(600)).await;
        assert!(r.result.is_ok());
        assert_eq!(r.printed, ["a", "b", "c"]);
        assert!(f
            .waits_asked
            .iter()
            .all(|w| *w == Some(Duration::from_secs(25))));
        // No pause between held waits that delivered or ran their course.
        assert_eq!(f.fetch_times[1] - f.fetch_times[0], Duration::from_secs(3));
        assert_eq!(f.fetch_times[2] - f.fetch_times[1], Duration::from_secs(25));
        assert_eq!(r.logs.len(), 1);
        assert!(r.logs[0].contains("pushes"));
    }

    #[tokio::test(start_paused = true)]
    async fn polls_at_the_interval_when_the_relay_cannot_wait() {
        let mut f = Fake {
            wait_supported: false,
            script: VecDeque::from([
                Step::Mail(vec![]),
                Step::Mail(vec!["a"]),
                Step::Mail(vec![]),
            ]),
            ..Default::default()
        };
        let cfg = Config {
            interval: Duration::from_millis(700),
            ..Config::default()
        };
        let r = go(&mut f, &cfg, Duration::from_secs(600)).await;
        assert_eq!(r.printed, ["a"]);
        assert!(f.waits_asked.iter().all(Option::is_none));
        for w in f.fetch_times.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_millis(700));
        }
        assert!(r.logs[0].contains("polling the relay every 700ms"));
    }

    /// agent-talk's `--follow --interval 60`: a held wait that ends empty
    /// (it ran its course, or mail that shows nothing, an ack, ended it) is
    /// followed by the next wait at once, not by the rest of the interval.
    #[tokio::test(start_paused = true)]
    async fn a_held_empty_wait_is_not_followed_by_the_interval() {
        let mut f = Fake {
            wait_supported: true,
            script: VecDeque::from([
                Step::Slow(Duration::from_secs(25), vec![]),
                Step::Slow(Duration::from_secs(2), vec![]),
                Step::Slow(Duration::from_millis(1500), vec!["a"]),
            ]),
            ..Default::default()
        };
        let cfg = Config {
            interval: Duration::from_secs(60),
            ..Config::default()
        };
        let r = go(&mut f, &cfg, Duration::from_secs(600)).await;
        assert_eq!(r.printed, ["a"]);
        assert_eq!(f.fetch_times[1] - f.fetch_times[0], Duration::from_secs(25));
        assert_eq!(f.fetch_times[2] - f.fetch_times[1], Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_instant_answer_does_not_spin() {
        let mut f = Fake {
            wait_supported: true,
            script: (0..5).map(|_| Step::Mail(vec![])).collect(),
            ..Default::default()
        };
        go(&mut f, &Config::default(), Duration::from_secs(600)).await;
        for w in f.fetch_times.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_secs(2));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn never_prints_a_message_twice() {
        let mut f = Fake {
            wait_supported: true,
            script: VecDeque::from([Step::Mail(vec!["a", "b"]), Step::Mail(vec!["b", "c", "a"])]),
            ..Default::default()
        };
        let r = go(&mut f, &Config::default(), Duration::from_secs(600)).await;
        assert_eq!(r.printed, ["a", "b", "c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn rides_out_an_outage_with_one_line_and_backoff_then_heals() {
        let mut f = Fake {
            wait_supported: true,
            script: VecDeque::from([
                Step::Mail(vec!["a"]),
                Step::Down,
                Step::Down,
                Step::Down,
                Step::Down,
                Step::Mail(vec!["b"]),
            ]),
            ..Default::default()
        };
        let r = go(&mut f, &Config::default(), Duration::from_secs(600)).await;
        assert_eq!(r.printed, ["a", "b"]);
        let outage: Vec<_> = r.logs.iter().filter(|l| l.contains("retrying")).collect();
        assert_eq!(outage.len(), 1, "{:?}", r.logs);
        assert!(outage[0].starts_with("retalk: relay unreachable"));
        // heal: once at start, then once per retry after a failure (the
        // first Down is hit by fetch, the later ones by heal itself).
        assert!(f.heals >= 2);
        // Backoff doubles: 0.5s, 1s, 2s, 4s.
        let gaps: Vec<_> = f.fetch_times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().any(|g| *g >= Duration::from_secs(4)),
            "{gaps:?}"
        );
        assert!(r.result.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_outage_gets_its_own_line() {
        let mut f = Fake {
            wait_supported: false,
            script: VecDeque::from([
                Step::Down,
                Step::Mail(vec!["a"]),
                Step::Down,
                Step::Mail(vec!["b"]),
            ]),
            ..Default::default()
        };
        let r = go(&mut f, &Config::default(), Duration::from_secs(600)).await;
        assert_eq!(r.printed, ["a", "b"]);
        assert_eq!(r.logs.iter().filter(|l| l.contains("retrying")).count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_end_the_loop() {
        let mut f = Fake {
            refuse_heal: true,
            ..Default::default()
        };
        let r = go(&mut f, &Config::default(), Duration::from_secs(600)).await;
        assert_eq!(r.result.unwrap_err().exit_code(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn maintains_at_start_and_every_minute() {
        let mut f = Fake {
            wait_supported: false,
            script: (0..100).map(|_| Step::Mail(vec![])).collect(),
            ..Default::default()
        };
        // 100 polls at 2s = 200s: maintenance at 0, 60, 120, 180.
        go(&mut f, &Config::default(), Duration::from_secs(1000)).await;
        assert_eq!(f.maintains, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_interrupts_a_held_wait_at_once() {
        let mut f = Fake {
            wait_supported: true,
            script: VecDeque::from([Step::Slow(Duration::from_secs(25), vec!["late"])]),
            ..Default::default()
        };
        let started = Instant::now();
        let r = go(&mut f, &Config::default(), Duration::from_secs(1)).await;
        assert!(r.result.is_ok());
        assert!(r.printed.is_empty());
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn output_errors_end_the_loop() {
        let mut f = Fake {
            wait_supported: true,
            script: VecDeque::from([Step::Mail(vec!["a"])]),
            ..Default::default()
        };
        let r = run(
            &mut f,
            &Config::default(),
            &mut |_| {
                Err(CliError::failure(
                    "stdout was closed (broken pipe); stopped",
                ))
            },
            &mut |_| {},
            tokio::time::sleep(Duration::from_secs(600)),
        )
        .await;
        assert!(r.unwrap_err().message.contains("broken pipe"));
        assert!(f.shown.is_empty(), "nothing unwritten is confirmed");
    }

    #[test]
    fn a_failed_write_confirms_only_what_was_written() {
        let mut f = Fake::default();
        let batch = Batch {
            messages: vec![m("a"), m("b"), m("c")],
            problems: vec![],
        };
        let mut n = 0;
        let r = deliver(
            &mut f,
            &batch,
            &mut Seen::new(8),
            &mut |_| {
                n += 1;
                if n > 1 {
                    Err(CliError::failure(
                        "stdout was closed (broken pipe); stopped",
                    ))
                } else {
                    Ok(())
                }
            },
            &mut |_| {},
        );
        assert!(r.is_err());
        assert_eq!(f.shown, ["a"]);
    }

    #[test]
    fn seen_forgets_only_the_oldest() {
        let mut s = Seen::new(2);
        assert!(s.first_time("a"));
        assert!(!s.first_time("a"));
        assert!(s.first_time("b"));
        assert!(s.first_time("c"));
        assert!(s.first_time("a"));
        assert!(!s.first_time("c"));
    }

    #[test]
    fn problems_are_reported_on_one_line() {
        let mut seen = Seen::new(8);
        let mut logs = vec![];
        let batch = Batch {
            messages: vec![],
            problems: vec![Problem {
                from: "abc".into(),
                reason: "bad\nmac".into(),
            }],
        };
        deliver(
            &mut Fake::default(),
            &batch,
            &mut seen,
            &mut |_| Ok(()),
            &mut |l| logs.push(l.to_string()),
        )
        .unwrap();
        assert_eq!(
            logs,
            [r"retalk: warning: a message from abc could not be read: bad\nmac"]
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(2)), "2s");
        assert_eq!(human(Duration::from_millis(500)), "500ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
