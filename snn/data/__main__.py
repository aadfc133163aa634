"""python -m snn.data check --dataset NAME --data-root DIR: list every bad file of a dataset.

Exit status: 0 when every file reads, else DatasetNotFound.exit_code (bad data's code in the table
of `python -m snn.train --help`) when one or more are bad or the dataset is not there.
"""

from __future__ import annotations

import argparse
import sys

from .. import exits
from .build import DATASETS, DEFAULT_ROOT
from .errors import DatasetNotFound
from .scan import check_dataset


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m snn.data", description="Dataset tools.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help=f"read every file of a dataset once and list the bad ones (exit "
                                     f"{DatasetNotFound.exit_code} if any)")
    c.add_argument("--dataset", required=True, choices=DATASETS)
    c.add_argument("--data-root", default=DEFAULT_ROOT, metavar="DIR",
                   help=f"folder holding the datasets, as for python -m snn.train (default: ./{DEFAULT_ROOT})")
    c.add_argument("--no-verify", dest="verify", action="store_false",
                   help="cifar: do not compare the files with the official md5 sums")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        checked, bad = check_dataset(args.dataset, args.data_root, verify=args.verify)
    except DatasetNotFound as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    for message in bad:
        print(message)
    print(f"{args.dataset}: {len(bad)} bad of {checked} files checked", file=sys.stderr)
    return DatasetNotFound.exit_code if bad else exits.DONE


if __name__ == "__main__":
    sys.exit(main())
