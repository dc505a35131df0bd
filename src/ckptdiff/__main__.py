"""``python -m ckptdiff``."""

from ckptdiff.cli import main

main()
