"""`python -m service.payloads export LOG... --model NAME --out OUT`: a payload log as training input.

    python -m service.payloads export /var/log/payloads --model sentiment-imdb --out reviews-to-label.csv
    python -m service.payloads export /var/log/payloads --model cifar10-cnn --out images-to-review/

LOG is the log folder (every *.jsonl in it) or some of its files. A text model's records become a
CSV whose empty `label` column people fill; an image model's become class folders of the model's
suggestions, to review (service.payloads.export). Exit status: 0 when something was exported,
1 when nothing could be (the summary says why), 2 when the export is refused before any work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service.payloads.export import ExportError, export

PROG = "python -m service.payloads"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("export", help="a log's records of one model -> a CSV to label, or image folders",
                                  description=__doc__.split("\n\n", 1)[1],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("logs", nargs="+", type=Path, metavar="LOG",
                         help="the log folder (SERVICE_PAYLOAD_LOG_DIR) or its files")
    command.add_argument("--model", required=True, help="whose records to export (a log holds every model's)")
    command.add_argument("--out", required=True, type=Path,
                         help="a new .csv file for a text model; a new (or empty) folder for an image model")
    command.add_argument("--test-fraction", type=float, default=0.2,
                         help="images: the share of each suggested label's images put in test/")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = export(args.logs, args.model, args.out, args.test_fraction)
    except ExportError as exc:
        print(f"{PROG} export: {exc}", file=sys.stderr)
        return 2
    print(summary.report())
    return 0 if summary.exported else 1


if __name__ == "__main__":
    sys.exit(main())
