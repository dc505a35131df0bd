"""The security boundary: every pickle ckptdiff reads passes through here.

``opcodes``/``scanner``/``scan`` walk a pickle stream opcode by opcode without executing it;
``unpickler`` rebuilds only the globals on the allow-list (``allowlist``) into inert records
(``records``, ``rebuild*``, ``numpy_records``, ``hparams``, ``dcp_records``, and
``script_records`` for TorchScript archives only), checked by
``validate``; ``inventory`` and ``unsafe_report`` are the scanner's view for
``inspect --unsafe-report``. Nothing here imports a framework or calls ``pickle.loads``.

May import: the core, ``sources``, and ``ckptdiff.readers`` base/safety/zip_safety/registry.
"""
