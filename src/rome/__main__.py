"""``python -m rome``: the same CLI as the ``rome`` script."""

import sys

from rome.cli import main

sys.exit(main())
