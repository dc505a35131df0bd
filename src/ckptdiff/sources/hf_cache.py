"""``hf:org/name[@revision]``: a model in the local Hugging Face cache, found offline.

The cache is the one ``huggingface_hub`` writes (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``~/.cache/huggingface/hub``): ``models--org--name/refs/<branch>`` holds a commit hash,
``snapshots/<hash>/`` the repository's files as symlinks into ``blobs/``. The weights are picked
as ``from_pretrained`` would (:data:`WEIGHT_FILES`, first found wins). Nothing is downloaded and
``huggingface_hub`` is not imported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ckptdiff.errors import CkptdiffError, UsageError

PREFIX = "hf:"
# Sharded safetensors, single safetensors, sharded torch, single torch, then TF as a last resort.
WEIGHT_FILES = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
    "tf_model.h5",
)
_REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_SHOWN = 8  # entries named in a "not found" message


def is_hf_spec(text: str) -> bool:
    """True for ``hf:…`` sources."""
    return text.startswith(PREFIX)


def cache_dir() -> Path:
    """The hub cache folder, from the same environment variables huggingface_hub reads."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def parse_spec(text: str) -> tuple[str, str]:
    """``(repo_id, revision)`` of ``hf:org/name[@revision]`` (revision defaults to ``main``)."""
    body = text[len(PREFIX):]
    repo_id, at, revision = body.partition("@")
    if not _REPO_ID.match(repo_id) or ".." in repo_id or (at and not revision):
        raise UsageError(f"{text}: a Hugging Face model is given as hf:org/name or "
                         "hf:org/name@revision (a branch, tag or commit hash)")
    return repo_id, revision or "main"


def resolve(text: str) -> Path:
    """The weights file (or sharded index) ``text`` names in the local cache."""
    repo_id, revision = parse_spec(text)
    cache = cache_dir()
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    if not repo.is_dir():
        cached = _cached_models(cache)
        listing = f"cached models: {_names(cached)}" if cached else "the cache holds no models"
        raise CkptdiffError(f"{text}: {repo_id} is not in the Hugging Face cache at {cache} "
                            f"({listing}); ckptdiff never downloads: run "
                            f"'huggingface-cli download {repo_id}' first")
    snapshot = repo / "snapshots" / _commit(text, repo, revision)
    for name in WEIGHT_FILES:
        candidate = snapshot / name
        if candidate.is_symlink() and not candidate.exists():
            raise CkptdiffError(f"{text}: {name} is in the cache but its blob is missing "
                                "(interrupted download?)")
        if candidate.is_file():
            return candidate
    files = sorted(p.name for p in snapshot.iterdir()) if snapshot.is_dir() else []
    raise CkptdiffError(f"{text}: no weights in the cached snapshot {snapshot.name[:12]} "
                        f"(looked for {', '.join(WEIGHT_FILES)}; it holds "
                        f"{_names(files) or 'nothing'})")


def _commit(text: str, repo: Path, revision: str) -> str:
    """The snapshot folder of ``revision``: a ref's commit hash, or a (prefix of a) hash."""
    ref = repo / "refs" / revision
    if ".." not in Path(revision).parts and ref.is_file():
        try:
            commit = ref.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CkptdiffError(f"{text}: cannot read the cached ref {revision!r}: {exc}") from None
        if (repo / "snapshots" / commit).is_dir():
            return commit
        raise CkptdiffError(f"{text}: ref {revision!r} points at commit {commit[:12]}, which is "
                            "not in the cache (interrupted download?)")
    snapshots = sorted(p.name for p in (repo / "snapshots").glob("*") if p.is_dir())
    if _COMMIT.match(revision):
        matches = [s for s in snapshots if s.startswith(revision)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"{text}: commit prefix {revision!r} is ambiguous "
                             f"({_names(matches)})")
    refs = sorted(str(p.relative_to(repo / "refs")) for p in (repo / "refs").rglob("*")
                  if p.is_file())
    raise CkptdiffError(f"{text}: revision {revision!r} is not in the cache (cached refs: "
                        f"{_names(refs) or 'none'}; snapshots: "
                        f"{_names([s[:12] for s in snapshots]) or 'none'})")


def _cached_models(cache: Path) -> list[str]:
    if not cache.is_dir():
        return []
    return sorted(p.name[len("models--"):].replace("--", "/") for p in cache.iterdir()
                  if p.name.startswith("models--") and p.is_dir())


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")
