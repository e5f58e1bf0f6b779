//! Interop with the Python reference (retalk 0.0.1 and 0.3.0 from PyPI):
//! its clients, relays and CLIs against ours, and its files taken over.
//!
//! This binary has its own runner (libtest-mimic, `harness = false`) so
//! that a test which needs the reference is reported as **ignored**, in the
//! runner's own summary, when Python or PyPI is missing, never counted as
//! passed. With `RETALK_REQUIRE_PYREF=1` (CI) a missing reference fails the
//! run instead. Tests that need only the reference's files (fixtures,
//! vectors) always run.
//!
//! Each module ends with `crate::cases! { python: [...], plain: [...] }`
//! listing its tests; a test function left out of the list is dead code,
//! which the build refuses (`-D warnings`).

use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use retalk_testkit::pyref;

mod cli;
mod cli03;
mod groups03;
mod invites03;
mod matrix;
mod mcp;
mod migrate;
mod mixed_rust_relay;
mod olm;
mod relay_py001;
mod relay_py030;
mod rust_client_py_relay;
mod share03;
mod takeover03;

/// One test: its name, whether it needs the Python reference, its body.
pub struct Case {
    name: &'static str,
    python: bool,
    run: fn(),
}

/// Lists a module's tests as `CASES`: `python` ones need the reference,
/// `plain` ones only its files.
#[macro_export]
macro_rules! cases {
    (python: [$($py:ident),* $(,)?], plain: [$($plain:ident),* $(,)?] $(,)?) => {
        pub(crate) const CASES: &[$crate::Case] = &[
            $($crate::Case::new(stringify!($py), true, $py),)*
            $($crate::Case::new(stringify!($plain), false, $plain),)*
        ];
    };
}

impl Case {
    /// A test case (used by [`cases!`]).
    pub const fn new(name: &'static str, python: bool, run: fn()) -> Case {
        Case { name, python, run }
    }
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let modules: &[(&str, &[Case])] = &[
        ("cli", cli::CASES),
        ("cli03", cli03::CASES),
        ("groups03", groups03::CASES),
        ("invites03", invites03::CASES),
        ("matrix", matrix::CASES),
        ("mcp", mcp::CASES),
        ("migrate", migrate::CASES),
        ("mixed_rust_relay", mixed_rust_relay::CASES),
        ("olm", olm::CASES),
        ("relay_py001", relay_py001::CASES),
        ("relay_py030", relay_py030::CASES),
        ("rust_client_py_relay", rust_client_py_relay::CASES),
        ("share03", share03::CASES),
        ("takeover03", takeover03::CASES),
    ];
    let selected = |name: &str| match &args.filter {
        None => true,
        Some(f) if args.exact => name == f,
        Some(f) => name.contains(f.as_str()),
    };
    // Set the reference up only when a test that needs it would run.
    let wants_python = !args.list
        && modules.iter().any(|(m, cases)| {
            cases
                .iter()
                .any(|c| c.python && selected(&format!("{m}::{}", c.name)))
        });
    let missing = if wants_python {
        pyref::availability().err()
    } else {
        None
    };
    if let Some(reason) = &missing {
        eprintln!(
            "interop: the Python reference is unavailable, so the tests that need it are \
             reported as ignored (set RETALK_REQUIRE_PYREF=1 to make this a failure; CI does):\n  {}",
            reason.replace('\n', "\n  ")
        );
    }
    let ignore_python = missing.is_some();
    let trials = modules
        .iter()
        .flat_map(|(m, cases)| {
            cases.iter().map(move |c| {
                let run = c.run;
                Trial::test(format!("{m}::{}", c.name), move || {
                    std::panic::catch_unwind(run).map_err(|e| Failed::from(panic_text(&e)))
                })
                .with_ignored_flag(c.python && ignore_python)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "the test panicked".to_owned())
}
