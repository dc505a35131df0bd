"""The GGUF reader (llama.cpp, ollama): the header only, by a bounded parser of its own
(``header``, over the byte window of ``cursor``), into a manifest with GGML dtypes and the
metadata users ask about (``summary``); ``reader`` is the registry's entry.

May import: the core and ``ckptdiff.readers`` base/safety; never the ``gguf`` package, numpy,
torch or transformers.
"""
