#!/usr/bin/env python3
"""Write the orders sample (see lake/sample_data.py): generate_sample_data.py --out DIR [--bad-partition]."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lake.sample_data import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
