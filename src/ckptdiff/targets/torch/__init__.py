"""Live torch models as targets: build an ``nn.Module`` on the meta device when possible
(``module``) and list what its ``state_dict`` holds, plus the tensors it holds outside it
(``unregistered``).

May import: the core, ``readers``, ``ckptdiff.targets.spec``; torch inside functions only.
"""
