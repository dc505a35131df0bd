"""What each framework's loader does with a checkpoint and a target: torch
``load_state_dict`` (``torch``), Keras ``load_weights`` (``keras``, ``keras_legacy``) and TF
``Checkpoint.restore`` (``tf``), replayed on two manifests without loading anything (``explain``
dispatches, records are ``statement.LoadStatement``). The same loaders as judges: ``judges``
picks the default loader of a pair and lists the others; ``torch_replay``/``torch_loaders``
(strict and non-strict ``load_state_dict``, ``safetensors.torch.load_model``), ``transformers``
with ``pretrained_mapping`` (``from_pretrained``), ``keras_weights`` and
``keras_legacy_weights`` (``load_weights`` in its key spaces) and ``explain_verdicts`` (Keras/TF
from the dry runs, where no key space applies) give ``verdict.Judgement`` records.
``frameworks`` says which framework a manifest belongs to; ``optimizer_slots`` knows optimizer
state keys (shared with ``diffing``).

May import: the core, ``sources``, ``readers``, ``targets``, ``rename``; frameworks (torch,
transformers) only inside the functions that replay ``from_pretrained``.
"""
