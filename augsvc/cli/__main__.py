"""``python -m augsvc.cli``: the same as the ``augsvc`` command."""

import sys

from augsvc.cli import main

sys.exit(main())
