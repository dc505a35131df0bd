"""The hostile pickle corpus: every malicious pickle, in every torch container form, is refused
as unsafe (exit 3) naming exactly the globals it references; nothing runs.

The corpus is generated (tests/hostile/): ~90 payloads (os.system, subprocess, eval/exec,
imports, file writes, sockets, nested pickle.loads, torch/numpy loaders …) reached by 18 tricks
(GLOBAL/INST/OBJ/NEWOBJ/NEWOBJ_EX, STACK_GLOBAL with strings from seven string opcodes or the
memo, BUILD-set ``__setstate__``, memo overwrites, POP_MARK, getattr chains, tensor hooks,
extension codes) in protocols 0-5. A positive control runs the runnable payloads with plain
``pickle`` in a throw-away child process to prove they are live.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from tests.hostile.containers import FORMS, _benign
from tests.hostile.corpus import CANARY_TEXT, Corpus, write_corpus
from tests.hostile.pickles import TECHNIQUES, corpus

from ckptdiff.errors import UnsafeContentError
from ckptdiff.readers import read
from ckptdiff.readers.pickle.unpickler import LoadSession, load_pickle
from ckptdiff.readers.pickle.unsafe_report import unsafe_report


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return write_corpus(tmp_path_factory.mktemp("hostile"))


def test_the_corpus_is_large_and_varied(written: Corpus) -> None:
    pickles = written.pickles
    assert len(pickles) >= 1000
    assert {p.protocol for p in pickles} == {0, 1, 2, 3, 4, 5}
    kinds = Counter(p.name.split("-")[1] for p in pickles)
    assert len(kinds) == len(TECHNIQUES) + 1 and min(kinds.values()) >= 3
    assert all(p.unsafe for p in pickles)
    assert len({p.payload.module + p.payload.name for p in pickles}) >= 80
    assert len(written.files) == len(pickles) * len(FORMS)


def test_every_pickle_is_refused_by_the_loader_with_its_globals(written: Corpus) -> None:
    for item in written.pickles:
        with pytest.raises(UnsafeContentError) as caught:
            load_pickle(item.whole(), LoadSession(legacy=False), "f.pt", "data.pkl")
        assert set(caught.value.globals) == item.unsafe, item.name


@pytest.mark.parametrize("form", list(FORMS))
def test_every_container_form_refuses_every_pickle(written: Corpus, form: str) -> None:
    before = written.canary_state()
    for item in written.files:
        if item.form != form:
            continue
        with pytest.raises(UnsafeContentError) as caught:
            read(item.path)
        error = caught.value
        assert set(error.globals) == item.hostile.unsafe, item.path
        assert error.exit_code == 3
        message = str(error)
        assert message.startswith(f"{item.path}: refused") and "\n" not in message
        assert "nothing was executed" in message
    assert written.canary_state() == before
    assert written.canary.read_text() == CANARY_TEXT


@pytest.mark.parametrize("form", list(FORMS))
def test_the_unsafe_report_lists_the_same_globals(written: Corpus, form: str) -> None:
    for item in written.files:
        if item.form != form:
            continue
        report = unsafe_report(item.path)
        assert report.unsafe_globals == sorted(item.hostile.unsafe), item.path
        assert report.verdict == "unsafe"
        json.loads(report.to_json())


@pytest.mark.parametrize("form", [f for f in FORMS if f != "dcp"])
def test_the_container_writers_make_valid_checkpoints(tmp_path: Path, form: str) -> None:
    benign = _benign(next(corpus(str(tmp_path / "canary"))))
    manifest = read(FORMS[form](benign, tmp_path / "benign"))
    assert manifest.keys() == (["w", "b"] if form != "zip" else [])


CONTROL = """
import json, os, pickle, sys
from pathlib import Path
fired = []
canary = Path(sys.argv[1])
for name, blob in json.loads(Path(sys.argv[2]).read_text()):
    for extra in canary.parent.iterdir():
        extra.unlink()
    canary.write_text("intact\\n")
    try:
        pickle.loads(bytes.fromhex(blob))
    except BaseException:
        pass
    while True:  # wait for the shells a payload started (os.popen, Popen) to finish
        try:
            os.wait()
        except ChildProcessError:
            break
    intact = canary.exists() and canary.read_text() == "intact\\n"
    if not intact or len(list(canary.parent.iterdir())) > 1:
        fired.append(name)
Path(sys.argv[3]).write_text(json.dumps(fired))  # not stdout: payloads print there
"""

# Tricks a real unpickler carries out (NEWOBJ needs a class; hook and extension-code pickles
# only name their global).
LIVE_TRICKS = ("global_reduce", "inst", "obj", "build_setstate", "memo_overwrite",
               "hidden_by_pop_mark", "getattr_chain", "nested_pickle", "stack_global")


def test_positive_control_the_payloads_are_live(tmp_path: Path) -> None:
    """Plain ``pickle.loads`` in a child process runs the runnable payloads: the corpus is real."""
    canary = tmp_path / "control" / "canary.txt"
    canary.parent.mkdir()
    chosen = [(p.name, p.whole().hex()) for p in corpus(str(canary))
              if p.payload.runnable and p.name.split("-")[1].startswith(LIVE_TRICKS)]
    (tmp_path / "control.json").write_text(json.dumps(chosen))
    subprocess.run([sys.executable, "-c", CONTROL, str(canary), str(tmp_path / "control.json"),
                    str(tmp_path / "fired.json")], capture_output=True, timeout=600,
                   cwd=tmp_path, stdin=subprocess.DEVNULL, check=True)
    fired = set(json.loads((tmp_path / "fired.json").read_text()))
    assert len(chosen) >= 200
    # Nearly all fire; a few calls fail on their arguments under some protocol.
    assert len(fired) >= 0.8 * len(chosen), sorted(set(n for n, _ in chosen) - fired)[:20]


def test_the_written_out_opcode_table_is_what_pickletools_says() -> None:
    from ckptdiff.readers.pickle.opcodes import OPCODES, derive_from_pickletools

    assert derive_from_pickletools() == OPCODES
