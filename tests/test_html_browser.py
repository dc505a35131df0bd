"""The HTML page in a real headless Chromium: the DOM after the script ran, search, no network.

Needs Debian's ``chromium`` (scripts/setup.sh installs it where apt-get exists); every test here
skips with the reason when it is absent. No browser is ever downloaded.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ckptdiff.api import diff
from ckptdiff.graph.diff import diff_tree
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.render.html import render_diff_html, render_manifest_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh: apt-get install "
    "chromium)")
# Chromium's own services (time, updates, accounts) call home in spite of the flags below; they
# are not the page's requests. The proxy test tells them apart by host.
BROWSER_SERVICES = re.compile(r"(^|\.)(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)$")


def chromium(url: str, *flags: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``url`` with the quiet flags; ``flags`` add to them."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", f"--user-data-dir={profile}", *flags, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def dump_dom(page: Path, tmp_path: Path, fragment: str = "", *flags: str) -> str:
    """The DOM of ``page`` after its script ran (offline: every host resolves to nothing)."""
    result = chromium(page.as_uri() + fragment, '--host-resolver-rules=MAP * ~NOTFOUND',
                      "--proxy-server=127.0.0.1:9", *flags, "--dump-dom",
                      profile=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def llama_like(layers: int) -> Manifest:
    return Manifest("model", "torch-module", tuple(
        TensorInfo(f"model.layers.{i}.{name}.weight", shape, "float32")
        for i in range(layers)
        for name, shape in (("self_attn.q_proj", (32, 32)), ("self_attn.o_proj", (32, 32)),
                            ("mlp.up_proj", (64, 32)), ("input_layernorm", (32,)))))


@pytest.fixture()
def diff_page(tmp_path: Path) -> Path:
    """A diff page: one missing key, one shape mismatch, everything else matched."""
    target = llama_like(8)
    source = replace(target, path="ckpt.safetensors", format="safetensors", tensors=tuple(
        replace(t, shape=(65, 32)) if t.key == "model.layers.2.mlp.up_proj.weight" else t
        for t in target.tensors if t.key != "model.layers.5.self_attn.o_proj.weight"))
    page = tmp_path / "report.html"
    page.write_text(render_diff_html(diff_tree(diff(source, target), source, target)))
    return page


def test_dom_after_the_script_ran(diff_page: Path, tmp_path: Path) -> None:
    dom = dump_dom(diff_page, tmp_path)
    assert "data-render-ms=" in dom  # the script ran to its end
    assert "INCOMPATIBLE" in dom and "1 missing, 1 shape" in dom
    # Rows the script drew: the broken branches are open, down to the broken keys.
    assert '<span class="label">o_proj.weight</span>' in dom
    assert "missing [32, 32] float32" in dom
    assert "shape [65, 32] → [64, 32] float32" in dom
    assert re.search(r'<span class="label">\{0,1,3,4,6,7\}</span><span class="fold">×6', dom)
    assert "32 keys" in dom  # the search box's count


def test_search_from_the_fragment(diff_page: Path, tmp_path: Path) -> None:
    dom = dump_dom(diff_page, tmp_path, "#q=layers.5%20O_PROJ")
    assert "1 of 32 keys match" in dom
    assert '<span class="label">model.layers.5.self_attn.o_proj.weight</span>' in dom
    assert '<div id="tree" hidden="">' in dom
    results = dom.split('id="results"')[1].split('<div id="tree"')[0]
    assert "model.layers.4.self_attn.o_proj.weight" not in results


def test_inspect_page_in_the_browser(tmp_path: Path) -> None:
    page = tmp_path / "inspect.html"
    page.write_text(render_manifest_html(llama_like(4)))
    dom = dump_dom(page, tmp_path)
    assert re.search(r'<span class="label">model\.layers\.\{0\.\.3\}</span>'
                     r'<span class="fold">×4</span>', dom)
    assert "16 keys" in dom


@pytest.fixture()
def proxy() -> Iterator[tuple[int, list[str]]]:
    """A local listener posing as the HTTP proxy; it records the host of every request."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(32)
    hosts: list[str] = []

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            client.settimeout(2)
            try:
                line = client.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                target = line.split(" ")[1] if " " in line else line
                hosts.append(re.sub(r"^[a-z]+://|[:/].*$", "", target))
            except OSError:
                hosts.append("?")
            client.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], hosts
    server.close()


def page_requests(page: Path, tmp_path: Path, port: int, hosts: list[str]) -> set[str]:
    result = chromium(page.as_uri(), f"--proxy-server=http://127.0.0.1:{port}",
                      "--proxy-bypass-list=<-loopback>", "--dump-dom",
                      profile=tmp_path / "proxy-profile")
    assert result.returncode == 0
    time.sleep(0.2)
    return {host for host in hosts if not BROWSER_SERVICES.search(host)}


def test_no_request_leaves_the_page(diff_page: Path, tmp_path: Path,
                                    proxy: tuple[int, list[str]]) -> None:
    port, hosts = proxy
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><img src="http://example.com/x.png">'
                       '<script src="https://cdn.example.org/a.js"></script>')
    # The control proves the listener sees a page's requests ...
    assert page_requests(control, tmp_path, port, hosts) >= {"example.com", "cdn.example.org"}
    hosts.clear()
    # ... and the report makes none.
    assert page_requests(diff_page, tmp_path, port, hosts) == set()


def test_screenshot(diff_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = chromium(diff_page.as_uri(), "--proxy-server=127.0.0.1:9", "--hide-scrollbars",
                      "--window-size=1100,900", f"--screenshot={shot}",
                      profile=tmp_path / "shot-profile")
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a blank page is a few KB
    keep = Path(__file__).resolve().parent.parent / ".pytest_cache" / "ckptdiff_report.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, keep)  # to look at after the run


def hundred_thousand_keys() -> tuple[Manifest, Manifest]:
    """1000 blocks of 100 tensors, shapes varying by block so nothing folds (the worst case)."""
    target: list[TensorInfo] = []
    source: list[TensorInfo] = []
    for index in range(100_000):
        block, slot = divmod(index, 100)
        shape = (block % 97 + 1, 4 + slot % 3)
        info = TensorInfo(f"model.blocks.{block}.sub{slot}.weight", shape, "float32")
        target.append(info)
        if index % 50:  # every 50th key missing
            source.append(replace(info, shape=(shape[0] + 1, shape[1])) if index % 73 == 0
                          else info)
    return (Manifest("ckpt.safetensors", "safetensors", tuple(source)),
            Manifest("model", "torch-module", tuple(target)))


def test_100k_key_report_opens_fast(tmp_path: Path, record_property: object) -> None:
    source, target = hundred_thousand_keys()
    report = diff(source, target)
    started = time.perf_counter()
    html = render_diff_html(diff_tree(report, source, target))
    python_s = time.perf_counter() - started
    page = tmp_path / "big.html"
    page.write_text(html)
    started = time.perf_counter()
    dom = dump_dom(page, tmp_path, "", "--window-size=1200,900")
    browser_s = time.perf_counter() - started
    render_ms, load_ms = (float(re.findall(rf'data-{name}-ms="([\d.]+)"', dom)[0])
                          for name in ("render", "load"))
    rows = dom.count('class="row')
    print(f"\n100k keys: tree and page ({len(html) / 2**20:.1f} MiB) built in {python_s:.1f} s; "
          f"chromium {browser_s:.1f} s in all, script {render_ms:.0f} ms, {load_ms:.0f} ms "
          f"since navigation start, {rows} rows drawn")
    assert callable(record_property)
    record_property("render_ms", render_ms)
    record_property("load_ms", load_ms)
    assert rows < 1000  # drawn lazily: not 100k elements
    assert render_ms < 5000 and load_ms < 10000
    assert "100000 keys" in dom
    searched = dump_dom(page, tmp_path, "#q=blocks.999.sub7.")
    assert "1 of 100000 keys match" in searched
