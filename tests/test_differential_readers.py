"""Differential fuzzing: ckptdiff's reading of each mutated checkpoint of every registered
family (torch zip/legacy, safetensors, DCP, Keras HDF5, tf.train: tests/differential/families.py)
against the framework loader's (tests/differential/harness.py). Quick mode (always): 80 inputs
per seed, seed 0. Long mode (``-m slow`` or ``CKPTDIFF_DIFFERENTIAL_INPUTS``): that many inputs,
seed ``CKPTDIFF_DIFFERENTIAL_SEED`` (default 1). Every differential found is pinned in FOUND
(and the families' own FOUND lists: tests/test_differential_keras.py, test_differential_tf.py)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the torch loader is the oracle")
pytest.importorskip("safetensors", reason="safe_open is the oracle")

from tests.differential.families import write_input  # noqa: E402
from tests.differential.harness import Tally, all_seeds, check_input, make_input, run  # noqa: E402
from tests.differential.sides import Loader  # noqa: E402

QUICK_PER_SEED = 80


@pytest.fixture(scope="module")
def loader() -> object:
    worker = Loader()
    yield worker
    worker.close()


def _check(tally: Tally, total: int) -> None:
    assert not tally.crashes, "\n".join(tally.crashes[:20])
    assert not tally.differentials, "\n".join(tally.differentials[:20])
    assert tally.inputs >= total
    assert tally.outcomes["agree"] > tally.inputs // 2  # the mutations mostly still parse


def test_quick_differential_fuzzing(tmp_path: Path, loader: Loader) -> None:
    seeds = all_seeds()
    tally = run(seeds, QUICK_PER_SEED, 0, tmp_path, loader)
    _check(tally, 2_000)


@pytest.mark.slow
def test_long_differential_fuzzing(tmp_path: Path, loader: Loader,
                                   request: pytest.FixtureRequest) -> None:
    chosen = "slow" in str(request.config.getoption("markexpr", ""))
    if not chosen and "CKPTDIFF_DIFFERENTIAL_INPUTS" not in os.environ:
        pytest.skip("long mode: select it with -m slow, or set CKPTDIFF_DIFFERENTIAL_INPUTS")
    total = int(os.environ.get("CKPTDIFF_DIFFERENTIAL_INPUTS", "50000"))
    seeds = all_seeds()
    tally = run(seeds, math.ceil(total / len(seeds)), int(
        os.environ.get("CKPTDIFF_DIFFERENTIAL_SEED", "1")), tmp_path, loader)
    _check(tally, total)


# Differentials the harness found, each fixed since: (run seed, seed name, input index).
FOUND = [
    (0, "zip/linear", 8),  # protocol-4 SHORT_BINUNICODE: torch refuses, ckptdiff read it unsaid
    (0, "zip/linear", 10),  # central directory names compression method 12
    (0, "zip/linear", 24),  # a bytes storage key: torch looks for data/b'0'
    (0, "zip/linear", 33),  # a member outside the archive/ root folder
    (0, "zip/mixed", 5),  # a second archive in the zip comment
    (0, "zip/mixed", 11),  # a second archive appended
    (0, "zip/linear", 37),  # archive in the comment: zipfile and miniz read different members
    (0, "legacy/mixed", 7),  # requires_grad=True on an int8 tensor
    (0, "legacy/empty_views", 12),  # empty storage viewed as float32 and int32
    (0, "zip/with_state", 26),  # _rebuild_parameter_with_state state sets .data
    (0, "zip/bytes_keys", 12),  # a bytes dict key reported as 'w'
    (0, "zip/empty_views", 0),  # empty storage with two dtypes: mmap and not disagree
    (0, "legacy/linear", 54),  # storage location ' cpu'
    (0, "zip/bytes_keys", 47),  # _codecs.encode of bytes
    (0, "zip/linear", 78),  # the version record dropped
    (0, "zip/mixed", 54),  # version -1
    (0, "zip/params", 66),  # version 99, past the 10 torch reads
    (0, "zip/complex", 58),  # version b''
    (0, "zip/nested", 51),  # .storage_alignment b'little\n', which int() refuses
    (0, "zip/params", 5),  # the version record's central directory says it is encrypted
    (0, "legacy/empty_views", 32),  # torch.cuda.FloatTensor() as backward hooks: needs CUDA
    (1, "legacy/linear", 118),  # a bytes key in the storage key list: torch never finds it
    (1, "legacy/mixed", 1159),  # the same, another position
    (1, "zip/linear", 82),  # storage location 'mps': loads on a Mac
    (1, "zip/linear", 608),  # storage location 'privateuseone': loads with that backend
    (1, "zip/bytes_keys", 238),  # _codecs.encode(text, b'latin1'): the encoding given as bytes
    (1, "legacy/bytes_keys", 163),  # the same in a legacy file
    (1, "legacy/linear", 1289),  # BFloat16Storage for FloatStorage: torch checks each count
    (1, "st/pair", 193),  # data_offsets [-0, …]: serde_json reads -0 as a float
    (1, "st/dtypes", 1769),  # shape [-0]: the same
    (1, "st/dtypes", 443),  # F6_E2M3: the library reads the header; torch has no such dtype
    (1, "st/dtypes", 700),  # F4: get_slice's shape, not get_tensor's packed one
    (1, "legacy/nested", 975),  # a container named "": the harness kept its empty segment
    # torch.distributed.checkpoint directories against DCP's own load (family_dcp.py)
    (0, "dcp/model_optim", 5),  # a storage_data key's offset changed: the chunk's read misses
    (0, "dcp/model_optim", 10),  # a tensor entry made BytesStorageMetadata: no such entry
    (0, "dcp/model_optim", 13),  # a planner_data path None: set_element refuses it
    (0, "dcp/model_optim", 14),  # a key left without a path: top-level, aliasing optim's path
    (0, "dcp/model_optim", 18),  # a chunk split in two, the second stored nowhere
    (0, "dcp/model_optim", 23),  # a storage offset moved: the range is not an archive
    (0, "dcp/model_optim", 46),  # a key renamed: its chunk's storage entry is not found
    (0, "dcp/model_optim", 203),  # dtype bits8: a float32 chunk cannot be copied into it
    (0, "dcp/flat", 17),  # an int step appended to a path: the rebuilt key is no entry
    (0, "dcp/flat", 45),  # dtype quint4x2: no chunk can be copied into it
    (0, "dcp/flat", 60),  # a path naming another nesting: the rebuilt key is no entry
    (0, "dcp/flat", 71),  # two entries given one path: the later one replaces the other
    (0, "dcp/flat", 243),  # TensorProperties' memory format not an _MEM_FORMAT_ENCODING
    (0, "dcp/nested", 209),  # a storage file name as bytes (_codecs.encode)
    (0, "dcp/nested", 222),  # _get_layout of bytes: torch's lookup is a KeyError
    (1, "dcp/flat", 977),  # an entry's storage moved to another key: it holds a (0, 2) tensor
    (1, "dcp/flat", 3616),  # a TensorStorageMetadata as a dict key: unhashable in torch
]


@pytest.mark.parametrize(("run_seed", "name", "index"), FOUND,
                         ids=[f"{n}-{i}" for _, n, i in FOUND])
def test_found_differentials_stay_fixed(run_seed: int, name: str, index: int, tmp_path: Path,
                                        loader: Loader) -> None:
    seeds = all_seeds()
    seed = next(s for s in seeds if s.name == name)
    what, data = make_input(seed, seeds, run_seed, index)
    path = write_input(tmp_path, seed, data)
    tally = Tally()
    outcome = check_input(path, seed, loader, tally, what)
    assert outcome in ("agree", "stricter", "flagged", "needs-device"), tally.differentials


def test_weights_only_tables_match_torch() -> None:
    import inspect

    from torch._weights_only_unpickler import _get_allowed_globals

    from ckptdiff.readers.pickle.allowlist import ALLOWED_GLOBALS, WEIGHTS_ONLY_REFUSES
    from ckptdiff.readers.pickle.weights_only import (
        TENSOR_DATA_ATTRIBUTES,
        TORCH_REFUSED_GLOBALS,
    )

    theirs = set(_get_allowed_globals())
    ours = {f"{m}.{n}" for m, n in ALLOWED_GLOBALS}
    refused = {f"{m}.{n}" for m, n in TORCH_REFUSED_GLOBALS}
    assert ours - theirs - set(WEIGHTS_ONLY_REFUSES) == refused
    descriptors = {n for n in dir(torch.Tensor)
                   if hasattr(inspect.getattr_static(torch.Tensor, n), "__set__")}
    assert descriptors == TENSOR_DATA_ATTRIBUTES
