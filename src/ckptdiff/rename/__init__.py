"""The rename engine: pairs unexpected source keys with missing target keys (``plan`` runs
the ``stages``: known prefixes, learned edits, index alignment, structure), keeps every pairing
one-to-one (``assign``), generalizes them into verified regex ``rules``, explains each step
(``explain``), and writes them as code to paste (``snippet``). Its outputs are
``results.Suggestion``/``Rule``/``Unpaired``.

May import: the core only, so that every part above can use it.
"""
