"""Keys as a module tree: the tree itself (``tree``), folding repeated branches such as
``layers.{0..31}`` (``fold``), a manifest as a tree with sizes (``manifest``) and the union tree
of a diff (``diff``).

May import: the core, ``readers``, ``targets``, ``rename``, ``loaders``, ``diffing``.
"""
