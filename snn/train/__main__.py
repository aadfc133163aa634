"""`python -m snn.train --help`: see snn/train/cli.py."""

from .cli import main

raise SystemExit(main())
