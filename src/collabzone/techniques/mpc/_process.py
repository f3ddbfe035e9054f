"""Entry point of one compute-server process (``python -m collabzone.techniques.mpc._process``).

MPyC's runtime reads its own options (``-P host:port`` per party, ``-I index``, ``--ssl``)
off ``sys.argv`` when it is imported, so this module imports it first and parses only what
is left. Not imported by the package: only a server process loads MPyC's runtime this way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from collabzone.errors import CollabzoneError, error_info
from collabzone.techniques.mpc._reports import ReportSpec
from collabzone.techniques.mpc._server import run_report
from collabzone.techniques.mpc._store import ShareStore


def main(argv: list[str] | None = None) -> None:
    """Entry point of one server process (MPyC's options are parsed by MPyC itself)."""
    from mpyc.runtime import mpc  # parses -P/-I/--ssl off sys.argv

    from collabzone.keys import master_key_from_env

    parser = argparse.ArgumentParser(prog="collabzone mpc server")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--shares-to", type=Path, required=True)
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    try:
        spec = ReportSpec.from_json(json.loads(args.report.read_text("utf-8")))
        store = ShareStore(args.store, master_key_from_env())
        doc = run_report(mpc, store, spec, connect_timeout=args.connect_timeout)
    except CollabzoneError as error:
        print(f"error: {error.message}", file=sys.stderr)
        raise SystemExit(error_info(error).exit_code) from None
    args.shares_to.write_text(json.dumps(doc), "utf-8")


if __name__ == "__main__":
    main()
