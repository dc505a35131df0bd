"""Where checkpoint bytes come from: local files, fsspec URLs read by byte ranges
(``remote*``), the local Hugging Face cache (``hf_cache``), and read progress (``progress``).

May import: the core (``manifest``, ``dtypes``, ``errors``, ``jsonlines``) only; fsspec inside
the functions that need it.
"""
