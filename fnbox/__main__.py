"""`python -m fnbox`: the same command line as the `fnbox` script."""

import sys

from fnbox.server.cli.main import main

sys.exit(main())
