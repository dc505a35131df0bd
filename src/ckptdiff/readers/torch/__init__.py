"""Readers of PyTorch checkpoints: ``torch.save`` zip archives (``zip``), pre-1.6 pickle
streams (``legacy``), ``pytorch_model.bin.index.json`` shards (``sharded``), and
``torch.distributed.checkpoint`` directories (``dcp``, ``dcp_layout``); ``manifest`` turns the
unpickled records into a manifest, ``containers`` finds the state dict inside a checkpoint.

May import: the core, ``sources``, ``ckptdiff.readers`` (its base and safety modules, the
``pickle`` security boundary, ``safetensors.index`` for the shared shard index); never torch.
"""
