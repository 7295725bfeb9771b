"""``python -m fusioncore``: the same as the ``fusioncore`` command."""

from fusioncore.cli import main

raise SystemExit(main())
