"""The CI gate: the ``Policy`` that judges a report (``policy``), the ``[tool.ckptdiff]``
settings (``config``), and ``ckptdiff check`` over every configured snapshot (``check``). The
pytest plugin is published as ``ckptdiff.testing``.

May import: every part below it (core to ``render``); never ``ckptdiff.api`` or the CLI.
"""
