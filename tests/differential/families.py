"""The registry of differential families: one per reader that has a framework loader.

A :class:`Family` says how to make its seeds, how to mutate one, and how the framework loader
reads a file (``load`` runs in a worker process whose ``imports`` are imported once, under a
``memory`` cap). Each family lives in its own ``family_*.py`` module exporting ``FAMILIES``;
adding a reader to the harness is adding that module to :data:`MODULES` below.

A seed's ``data`` is the bytes of one file (read at ``input<suffix>``) or a tuple of
``(relative name, bytes)`` files written into a fresh directory (read at ``input/<suffix>``:
``""`` for the directory itself, as DCP, or a prefix such as ``ckpt`` for a tf.train bundle).
"""

from __future__ import annotations

import functools
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.differential.sides import Reading

Files = tuple[tuple[str, bytes], ...]
Data = bytes | Files


@dataclass(frozen=True)
class Seed:
    """One seed checkpoint: ``family`` names the :class:`Family` that mutates and loads it."""

    name: str
    family: str
    data: Data
    suffix: str


@dataclass(frozen=True)
class Family:
    """How to fuzz one reader against its framework loader."""

    name: str
    seeds: Callable[[], list[Seed]]
    # (seed, every seed, rng) -> (what was done, the mutated data)
    mutate: Callable[[Seed, list[Seed], random.Random], tuple[str, Data]]
    # the loader's reading of a path; a module-level function, run in the worker
    load: Callable[[str], Reading]
    imports: tuple[str, ...] = ()
    memory: int = 3 << 30


def write_input(scratch: Path, seed: Seed, data: Data, stem: str = "input") -> Path:
    """Write ``data`` under ``scratch``; the path a reader is given."""
    if isinstance(data, bytes):
        path = scratch / f"{stem}{seed.suffix}"
        path.write_bytes(data)
        return path
    directory = scratch / stem
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    for name, content in data:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return directory / seed.suffix if seed.suffix else directory


def _modules() -> list[ModuleType]:
    from tests.differential import (
        family_dcp,
        family_keras,
        family_safetensors,
        family_tf,
        family_torch,
    )

    return [family_torch, family_safetensors, family_dcp, family_keras, family_tf]


@functools.cache
def registry() -> dict[str, Family]:
    """Every family by name, in the order their seeds run."""
    families: dict[str, Family] = {}
    for module in _modules():
        for family in module.FAMILIES:
            families[family.name] = family
    return families
