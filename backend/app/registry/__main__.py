"""``python -m app.registry ...``: see ``app.registry.cli``."""

import sys

from app.registry.cli import main

sys.exit(main())
