"""``python -m ckptdiff``."""

from ckptdiff.entry import main

main()
