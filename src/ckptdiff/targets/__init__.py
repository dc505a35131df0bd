"""Targets: turn anything a checkpoint is compared with into the manifest of what it expects:
a checkpoint or snapshot (through the readers), or a live model (``torch``, ``keras``) named by a
spec (``spec``) and dispatched by ``resolve``.

May import: the core, ``sources``, ``readers``; frameworks inside the adapters' functions only.
"""
