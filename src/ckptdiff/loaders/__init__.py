"""What each framework's loader does with a checkpoint and a target: torch
``load_state_dict`` (``torch``), Keras ``load_weights`` (``keras``, ``keras_legacy``) and TF
``Checkpoint.restore`` (``tf``), replayed on two manifests without loading anything (``explain``
dispatches, records are ``statement.LoadStatement``). ``frameworks`` says which framework a
manifest belongs to; ``optimizer_slots`` knows optimizer state keys (shared with ``diffing``).

May import: the core, ``sources``, ``readers``, ``targets``, ``rename``; frameworks never.
"""
