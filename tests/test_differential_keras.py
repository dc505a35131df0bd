"""The Keras HDF5 family of the parser-differential harness (tests/differential/family_keras.py):
every input it found where ckptdiff and Keras' reading of a file differed, pinned as
(run seed, seed name, input index). The quick and long runs are those of
tests/test_differential_readers.py, which runs every registered family's seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("h5py", reason="h5py is the loader's reader")
pytest.importorskip("keras", reason="the seeds are written by Keras")

from tests.differential.families import write_input  # noqa: E402
from tests.differential.harness import Tally, all_seeds, check_input, make_input  # noqa: E402
from tests.differential.sides import Loader  # noqa: E402

FAMILIES = ["keras-weights-h5", "keras-h5"]

# Differentials found, each fixed since (in ckptdiff's Keras readers unless said otherwise).
KERAS_FOUND = [
    (0, "keras3/sequential", 1),  # a layer group hard-linked under a second name: listed once
    (0, "keras3/sequential", 4),  # vars/1 deleted: Keras reads 0..len-1 and misses 1
    (0, "keras3/sequential", 6),  # a dataset named "dense" in vars: not a position
    (0, "keras3/sequential", 23),  # an extra non-positional dataset in vars
    (0, "keras3/sequential", 46),  # a (1048576, 8192) chunked shape bomb: Keras refuses it
    (0, "keras3/sequential", 35),  # a name attribute not UTF-8: the harness spells it as ckptdiff
    (0, "keras3/sequential", 22),  # the model's empty /vars deleted: the sniffer missed the file
    (0, "keras3/lstm", 25),  # S8 values marked bfloat16: h5py cannot convert them
    (0, "keras3/lstm", 33),  # vars/1 a hard link to a group
    (0, "keras3/lstm", 39),  # a (2**40,) dataset storing nothing: a shape bomb
    (0, "keras3/lstm", 76),  # a null dataspace, shown as a 0-d scalar
    (0, "keras3/lstm", 51),  # a hard link back to the root (a cycle)
    (0, "h5/weights", 20),  # a shape bomb in a legacy file
    (0, "h5/model", 28),  # weight_names a str scalar: Keras iterates its characters
    (0, "h5/model", 51),  # an array datatype (f4 x 3): numpy cannot read it into (2,)
    (0, "h5/model", 60),  # a null dataspace in a legacy file
    (1, "h5/model", 523),  # model_config an int: load_model's JSON decoding refuses it
]


@pytest.fixture(scope="module")
def loader() -> object:
    worker = Loader()
    yield worker
    worker.close()


@pytest.mark.parametrize(("run_seed", "name", "index"), KERAS_FOUND,
                         ids=[f"{n}-{i}" for _, n, i in KERAS_FOUND])
def test_found_keras_differentials_stay_fixed(run_seed: int, name: str, index: int,
                                              tmp_path: Path, loader: Loader) -> None:
    seeds = all_seeds(FAMILIES)
    seed = next(s for s in seeds if s.name == name)
    what, data = make_input(seed, seeds, run_seed, index)
    tally = Tally()
    outcome = check_input(write_input(tmp_path, seed, data), seed, loader, tally, what)
    assert outcome in ("agree", "stricter"), tally.differentials or what


def test_unmutated_seeds_agree(tmp_path: Path, loader: Loader) -> None:
    for seed in all_seeds(FAMILIES):
        tally = Tally()
        assert check_input(write_input(tmp_path, seed, seed.data), seed, loader, tally,
                           seed.name) == "agree", tally.differentials
