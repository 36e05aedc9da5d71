"""``python -m smithing.cli``: the command line."""

from smithing.cli import main

raise SystemExit(main())
