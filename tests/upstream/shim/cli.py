"""Shim for `python -m retalk.cli`: exec our CLI with the same arguments
(and the same environment: RETALK_HOME, RETALK_USER, RETALK_PASSPHRASE,
RETALK_RELAY, ...). The binary is $RETALK_SHIM_CLI_BIN, which
tests/upstream/run.sh sets. Nothing of 0.3.0's cli module is offered
as a library (e.g. `from retalk.cli import _saved_peers` fails)."""
import os
import sys

BIN = os.environ.get("RETALK_SHIM_CLI_BIN", "retalk")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(BIN, ["retalk", *argv])


if __name__ == "__main__":
    main()
