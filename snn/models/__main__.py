"""`python -m snn.models [--norm tdbn] [--width 1.0] [--bias | --no-bias]`: parameter counts of the paper's networks."""

import argparse

import pandas as pd

from . import NORMS, parameter_counts


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--norm", default="tdbn", choices=NORMS)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None,
                        help="biases on hidden layers with no norm after them (default: only with a norm)")
    args = parser.parse_args(argv)
    try:
        rows = parameter_counts(args.norm, args.width, args.bias)
    except (TypeError, ValueError) as error:
        parser.error(str(error))  # one line and argparse's usage exit code
    table = pd.DataFrame(rows)
    table["millions"] = (table["parameters"] / 1e6).round(3)
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
