"""The diff: match two manifests key by key into findings (``match``), the checks beyond keys
(``trainable``, ``unregistered``, ``optimizer``), notes on exported graphs' naming conventions
(``exported``), the ``Report`` they make (``report``), and the
composition that resolves any source and target first (``compare``). Named ``diffing`` because
``ckptdiff.diff`` is the public function, which a sub-package of that name would shadow.

May import: the core, ``sources``, ``readers``, ``targets``, ``rename``, ``loaders``.
"""
