"""What hostile pickles call: callables that run commands, code, imports, file or network I/O.

Each payload is a global and the arguments that would make it hit the canary (delete it, truncate
it, write beside it) if a real unpickler called it. ``runnable`` marks the ones the positive
control may really run with plain ``pickle`` in a throw-away child process (no network, no
browser, no interpreter replacement), to prove the corpus is live ammunition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Payload:
    """``module.name(*args)``, with the canary path put into ``args`` by :func:`payloads`."""

    module: str
    name: str
    args: tuple[Any, ...]
    runnable: bool = False


def _shell(canary: str) -> str:
    return f"rm -f {canary}; touch {canary}.pwned"


def _python(canary: str) -> str:
    return f"__import__('os').remove({canary!r})"


def payloads(canary: str) -> list[Payload]:
    """Every payload, aimed at ``canary`` (an absolute path)."""
    sh, py = _shell(canary), _python(canary)
    folder = canary.rsplit("/", 1)[0]
    return [
        Payload("os", "system", (sh,), runnable=True),
        Payload("posix", "system", (sh,), runnable=True),
        Payload("nt", "system", (sh,)),
        Payload("os", "popen", (sh,), runnable=True),
        Payload("os", "remove", (canary,), runnable=True),
        Payload("os", "unlink", (canary,), runnable=True),
        Payload("os", "rename", (canary, canary + ".moved"), runnable=True),
        Payload("os", "truncate", (canary, 0), runnable=True),
        Payload("os", "execv", ("/bin/sh", ["sh", "-c", sh])),
        Payload("os", "execvp", ("sh", ["sh", "-c", sh])),
        Payload("os", "spawnlp", (0, "sh", "sh", "-c", sh)),
        Payload("os", "posix_spawn", ("/bin/sh", ["sh", "-c", sh], {})),
        Payload("os", "fork", ()),
        Payload("pty", "spawn", (["sh", "-c", sh],)),
        Payload("subprocess", "Popen", (["sh", "-c", sh],), runnable=True),
        Payload("subprocess", "call", (["sh", "-c", sh],), runnable=True),
        Payload("subprocess", "run", (["sh", "-c", sh],), runnable=True),
        Payload("subprocess", "check_call", (["sh", "-c", sh],), runnable=True),
        Payload("subprocess", "check_output", (["sh", "-c", sh],), runnable=True),
        Payload("subprocess", "getoutput", (sh,), runnable=True),
        Payload("subprocess", "getstatusoutput", (sh,), runnable=True),
        Payload("_posixsubprocess", "fork_exec", ()),
        Payload("builtins", "eval", (py,), runnable=True),
        Payload("builtins", "exec", (py,), runnable=True),
        Payload("__builtin__", "eval", (py,), runnable=True),
        Payload("__builtin__", "execfile", (canary,)),
        Payload("builtins", "compile", (py, "<x>", "exec")),
        Payload("builtins", "__import__", ("os",)),
        Payload("builtins", "open", (canary, "w"), runnable=True),
        Payload("io", "open", (canary, "w"), runnable=True),
        Payload("io", "FileIO", (canary, "w"), runnable=True),
        Payload("_io", "FileIO", (canary, "w"), runnable=True),
        Payload("codecs", "open", (canary, "w"), runnable=True),
        Payload("builtins", "breakpoint", ()),
        Payload("builtins", "input", ()),
        Payload("builtins", "setattr", ("x", "y", "z")),
        Payload("builtins", "globals", ()),
        Payload("shutil", "rmtree", (folder,)),
        Payload("shutil", "move", (canary, canary + ".moved"), runnable=True),
        Payload("shutil", "copyfile", ("/dev/null", canary), runnable=True),
        Payload("pathlib", "Path.unlink", ()),
        Payload("importlib", "import_module", ("os",)),
        Payload("runpy", "_run_code", (py, {})),
        Payload("runpy", "run_path", (canary,)),
        Payload("code", "InteractiveInterpreter.runsource", (py,)),
        Payload("timeit", "timeit", (py, "pass", None, 1)),
        Payload("cProfile", "run", (py,), runnable=True),
        Payload("profile", "run", (py,), runnable=True),
        Payload("pdb", "run", (py,)),
        Payload("bdb", "Bdb.run", (py,)),
        Payload("trace", "Trace.runctx", (py,)),
        Payload("pickle", "loads", (b"",)),
        Payload("_pickle", "loads", (b"",)),
        Payload("marshal", "loads", (b"",)),
        Payload("types", "FunctionType", ()),
        Payload("types", "CodeType", ()),
        Payload("copyreg", "_reconstructor", ()),
        Payload("copy_reg", "_reconstructor", ()),
        Payload("functools", "partial", ()),
        Payload("operator", "methodcaller", ("system", sh)),
        Payload("operator", "attrgetter", ("system",)),
        Payload("sys", "modules", ()),
        Payload("ctypes", "CDLL", ("libc.so.6",)),
        Payload("socket", "create_connection", (("127.0.0.1", 9),)),
        Payload("socket", "socket", ()),
        Payload("urllib.request", "urlopen", ("http://127.0.0.1:9/",)),
        Payload("webbrowser", "open", ("file://" + canary,)),
        Payload("pydoc", "pipepager", ("", sh)),
        Payload("pydoc", "locate", ("os.system",)),
        Payload("site", "main", ()),
        Payload("atexit", "register", ("os.system",)),
        Payload("builtins", "getattr", ("os", "system")),
        Payload("pkgutil", "resolve_name", ("os:system",)),
        Payload("asyncio.unix_events", "_UnixSubprocessTransport._start", ()),
        Payload("idlelib.pyshell", "ModifiedInterpreter.runcode", ()),
        Payload("numpy.testing._private.utils", "runstring", (py, {})),
        Payload("numpy", "load", (canary,)),
        Payload("numpy", "load", (canary, None, True)),  # allow_pickle=True: loads pickles
        Payload("torch.serialization", "load", (canary,)),
        Payload("torch", "load", (canary,)),
        Payload("torch.storage", "_load_from_bytes", (b"",)),
        Payload("torch.serialization", "os.system", (sh,)),
        Payload("torch.jit", "load", (canary,)),
        Payload("torch.hub", "load", ("x/y", "z")),
        Payload("torch.hub", "download_url_to_file", ("http://127.0.0.1:9/", canary)),
        Payload("torch.utils.cpp_extension", "load_inline", ("x", "")),
        Payload("torch._inductor.codecache", "compile_file", ()),
        Payload("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression",
                (py, [])),
        Payload("collections", "OrderedDict.__init__.__globals__", ()),
        Payload("os\nx", "system", (sh,)),
        Payload("builtins", "eval\u200b", (py,)),
    ]
