"""tf.train differentials the harness found (tests/differential/family_tf.py), each fixed since,
plus the slice-key encoding they led to. The family's quick run is part of
tests/test_differential_readers.py (``all_seeds()`` includes it); a long run of this family
alone: ``harness.run(all_seeds(["tf-checkpoint"]), per_seed, 1, scratch, Loader())``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

if importlib.util.find_spec("tensorflow") is None:  # not imported here: only in the workers
    pytest.skip("tf.train.load_checkpoint is the oracle", allow_module_level=True)

from tests.differential.families import write_input  # noqa: E402
from tests.differential.harness import Tally, all_seeds, check_input, make_input  # noqa: E402
from tests.differential.sides import Loader  # noqa: E402

from ckptdiff.readers.tf.slices import _signed, slice_key  # noqa: E402

# (run seed, seed name, input index): what TensorFlow refused that ckptdiff had read.
FOUND_TF = [
    (0, "tf/keras", 22),  # dtype code 31 (int2): TensorFlow checks its 1-byte size
    (0, "tf/sharded", 4),  # dtype code 12 (quint8), the same
    (0, "tf/tf1", 29),  # dtype code 16 (quint16), the same
    (0, "tf/keras", 31),  # a key starting with byte 0xc3: the Python reader cannot decode it
    (0, "tf/keras", 38),  # a key ending with byte 0xff, the same
    (0, "tf/keras", 81),  # an entry lists slices that are not stored
    (0, "tf/sharded", 16),  # the same, for a slice of the whole first dimension
    (0, "tf/sharded", 2),  # a slice stored as int32 of a float32 tensor: TensorFlow aborts
    (0, "tf/sharded", 75),  # the partitioned tensor's dtype made bool, its slices float32
    (0, "tf/tf1", 65),  # a scalar with a slice of rank 1
    (0, "tf/tf2_dtypes", 338),  # a string made a variant: undecodable bytes (loader-only)
    (1, "tf/keras", 788),  # float32 bytes read as a variant: run out (loader-only)
    (1, "tf/tf2_dtypes", 516),  # an empty variant: read, but numpy cannot hold it (agree)
    (1, "tf/tf2_dtypes", 1334),  # shape [0, 2**62]: read, numpy refuses its size (agree)
]


@pytest.fixture(scope="module")
def loader() -> object:
    worker = Loader()
    yield worker
    worker.close()


@pytest.mark.parametrize(("run_seed", "name", "index"), FOUND_TF,
                         ids=[f"{n}-{i}" for _, n, i in FOUND_TF])
def test_found_tf_differentials_stay_fixed(run_seed: int, name: str, index: int,
                                           tmp_path: Path, loader: Loader) -> None:
    seeds = all_seeds(["tf-checkpoint"])
    seed = next(s for s in seeds if s.name == name)
    what, data = make_input(seed, all_seeds(), run_seed, index)
    tally = Tally()
    outcome = check_input(write_input(tmp_path, seed, data), seed, loader, tally, what)
    assert outcome in ("agree", "stricter", "loader-only"), tally.differentials


def test_slice_keys_are_tensorflows() -> None:
    # The keys TensorFlow 2.21 wrote for the two halves of the sharded seed's v2.
    name = b"v2/.ATTRIBUTES/VARIABLE_VALUE"
    assert slice_key(name, ((0, 2),)) == b"\x00" + name + b"\x00\x01\x01\x01\x80\x82"
    assert slice_key(name, ((2, 2),)) == b"\x00" + name + b"\x00\x01\x01\x01\x82\x82"
    # OrderedCode's signed encoding (ordered_code_test.cc): lengths in the leading bits.
    assert [_signed(v).hex() for v in (0, 63, 64, -1, -64, -65, 8191, 8192)] == [
        "80", "bf", "c040", "7f", "40", "3fbf", "dfff", "e02000"]
    assert slice_key(b"a\x00b\xff", ()) == b"\x00a\x00\xffb\xff\x00\x00\x01\x00"
