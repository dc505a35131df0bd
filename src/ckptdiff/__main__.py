"""``python -m ckptdiff``."""

from ckptdiff.cli.entry import main

main()
