"""``python -m smithing``: the command-line interface (same as the ``smithing`` script)."""

from smithing.cli import main

raise SystemExit(main())
