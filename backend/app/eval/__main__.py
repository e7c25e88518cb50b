"""``python -m app.eval ...``: see ``app.eval.cli``."""

from app.eval.cli import main

raise SystemExit(main())
