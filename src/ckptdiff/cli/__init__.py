"""The command line: the typer app and its commands (``app``, ``remap``), what they share
(``common``: one-line errors, exit codes, option types), and the console-script entry point with
the fast lane for plain ``ckptdiff inspect`` (``entry``). The only part that prints and exits.

May import: everything; typer and rich here and in ``render`` only.
"""
