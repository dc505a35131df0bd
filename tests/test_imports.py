"""Framework imports happen inside the functions that need them: prove it in fresh processes."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ckptdiff

HEAVY = ("torch", "tensorflow", "keras", "jax", "h5py", "transformers", "safetensors")


def _imported_after(code: str, *args: str) -> list[str]:
    script = (code + "\nimport sys, json\n"
              f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_every_ckptdiff_module_imports_without_frameworks() -> None:
    names = [m.name for m in pkgutil.walk_packages(ckptdiff.__path__, "ckptdiff.")
             if not m.name.endswith("__main__")]
    code = "import importlib\n" + "".join(f"importlib.import_module({n!r})\n" for n in names)
    assert _imported_after(code) == []


def test_cli_json_path_does_not_import_rich_tables() -> None:
    # The JSON output path must stay cheap: rich's table machinery is for humans only.
    code = "import ckptdiff.cli.app, ckptdiff.render.json, ckptdiff.api"
    script = code + "\nimport sys\nprint('rich.table' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    st = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    base = tmp_path_factory.mktemp("noimport")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    paths = {"pth": base / "a.pth", "safetensors": base / "b.safetensors"}
    torch.save(model.state_dict(), paths["pth"])
    st.save_file(dict(model.state_dict()), str(paths["safetensors"]))
    return paths


@pytest.mark.parametrize("argv", [
    ("inspect", "{pth}"), ("inspect", "{safetensors}"), ("inspect", "{pth}", "--format", "json"),
    ("diff", "{pth}", "{safetensors}"), ("diff", "{pth}", "{safetensors}", "--format", "json"),
])
def test_cli_reads_files_without_importing_frameworks(argv: tuple[str, ...],
                                                      torch_files: dict[str, Path]) -> None:
    args = [a.format(**{k: str(v) for k, v in torch_files.items()}) for a in argv]
    code = ("import sys\nfrom ckptdiff.cli.app import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    assert e.code in (0, 1, None), e.code\n")
    assert _imported_after(code, *args) == []


def test_inspecting_a_pth_loads_only_the_readers_it_needs(torch_files: dict[str, Path]) -> None:
    # Readers the suffix suggests are sniffed first: a .pth never pays for the safetensors reader.
    script = ("import sys\nfrom ckptdiff.cli.entry import main\nsys.argv = ['ckptdiff', 'inspect', "
              f"{str(torch_files['pth'])!r}, '--format', 'json']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in sys.modules if m.startswith('ckptdiff.readers.')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.strip().splitlines()[-1]
    assert "ckptdiff.readers.torch.zip" in loaded
    assert "ckptdiff.readers.safetensors.single'" not in loaded
    assert "ckptdiff.readers.tf.checkpoint" not in loaded
