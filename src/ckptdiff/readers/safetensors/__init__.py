"""Readers of safetensors files: one file (``single``), its header validated as the
safetensors library does (``header``, ``strict_json``), and sharded checkpoints through their
``*.safetensors.index.json`` or a directory (``index``).

May import: the core, ``sources`` and ``ckptdiff.readers`` base/safety; never the safetensors
library, torch or numpy.
"""
