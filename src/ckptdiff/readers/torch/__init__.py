"""Readers of PyTorch checkpoints: ``torch.save`` zip archives (``zip``), pre-1.6 pickle
streams (``legacy``), ``pytorch_model.bin.index.json`` shards (``sharded``),
``torch.distributed.checkpoint`` directories (``dcp``, ``dcp_layout``), TorchScript archives
(``torchscript``, ``torchscript_code``; ``zip_layout`` tells them from ``torch.save`` zips) and
``torch.export`` ``.pt2`` archives (``export``, ``export_config``); ``manifest`` turns the
unpickled records into a manifest, ``containers`` finds the state dict inside a checkpoint.

May import: the core, ``sources``, ``ckptdiff.readers`` (its base and safety modules, the
``pickle`` security boundary, ``safetensors.index`` for the shared shard index); never torch.
"""
