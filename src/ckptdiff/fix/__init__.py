"""Fixes that run: ``remap`` writes a checkpoint the target loads (``remap_sources`` is the one
place that reads weight bytes, ``remap_write`` writes safetensors), ``rules_file`` stores the
rules found, and ``loading`` is ``ckptdiff.load_state_dict``.

May import: the core, ``sources``, ``readers``, ``targets``, ``rename``, ``loaders``, ``diffing``,
``graph``; torch, numpy and safetensors inside functions only.
"""
