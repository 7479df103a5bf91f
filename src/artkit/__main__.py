"""``python -m artkit``: the same command line as ``artkit``."""

from artkit.cli import main

main()
