"""`python -m tenantvault.cli`: the same as the `tenantvault` console script."""

import sys

from tenantvault.cli import main

sys.exit(main())
