#!/usr/bin/env python3
"""Checks that the fast path's property test can fail: applies one mutation
at a time to retalk-proto/src/request/fast.rs, runs the property test with
no saved seeds, and says whether it caught the mutant. Restores the source
and the seed file afterwards. Run from the workspace root:

    python3 retalk-proto/fast-path-mutants.py

"auth ignores unknown fields" is expected to survive: the general parser
ignores unknown auth fields too, so that mutant answers the same.
"""
import pathlib
import subprocess

SRC = pathlib.Path("retalk-proto/src/request/fast.rs")
SEEDS = pathlib.Path("retalk-proto/proptest-regressions/request/fast.txt")
MUTANTS = {
    "dialect disagreement ignored": (
        "(Some(a), Some(b)) => (a.0 == b.0).then_some(a.0),",
        "(Some(a), Some(_b)) => Some(a.0),"),
    "null taken for absent": (
        "Text::deserialize(d).map(Some)", "Option::<Text>::deserialize(d)"),
    "mtype -0 accepted": (
        '"0" => MessageType::PreKey,', '"0" | "-0" => MessageType::PreKey,'),
    "mtype 1.0 accepted": (
        '"1" => MessageType::Normal,', '"1" | "1.0" => MessageType::Normal,'),
    "auth ignores unknown fields": (
        "#[serde(deny_unknown_fields)]\nstruct AuthFields", "struct AuthFields"),
    "args ignore unknown fields": (
        "#[serde(deny_unknown_fields)]\nstruct SendArgs", "struct SendArgs"),
    "body unchecked": ("if !SendMessage::body_is_valid(&body) {", "if false {"),
    "recipient unchecked": (
        'let to = UserId::parse(&to, "to").ok()?;',
        'let to = UserId::parse(&to, "to").unwrap_or_else(|_| '
        'UserId::parse(&"ab".repeat(16), "to").unwrap());'),
}

source, seeds = SRC.read_text(), SEEDS.read_text()
try:
    for name, (old, new) in MUTANTS.items():
        assert old in source, f"{name}: the code it mutates has changed"
        SRC.write_text(source.replace(old, new))
        SEEDS.write_text("")
        run = subprocess.run(
            ["cargo", "test", "-q", "-p", "retalk-proto", "--lib",
             "the_fast_path_never_disagrees"], capture_output=True, text=True)
        verdict = ("SURVIVED" if "test result: ok" in run.stdout
                   else "caught" if "test result: FAILED" in run.stdout
                   else "did not build")
        print(f"{name}: {verdict}", flush=True)
finally:
    SRC.write_text(source)
    SEEDS.write_text(seeds)
