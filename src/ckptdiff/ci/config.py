"""Read a :class:`~ckptdiff.ci.policy.Policy` from ``[tool.ckptdiff]`` in ``pyproject.toml``.

The file is found from the current directory upward: the nearest ``pyproject.toml`` with a
``[tool.ckptdiff]`` table. Every problem is a one-line :class:`UsageError` naming the file and
the setting, e.g.::

    [tool.ckptdiff]
    fail-on = "error"                  # or "warning"
    ignore = ["*.num_batches_tracked"]
    allow-missing = ["classifier.*"]   # may be missing or reshaped: the model reinitialises them
    allow-unexpected = ["aux_head.*"]
    allow-rename = true                # confident renames pass (rename-confidence, default 0.9)
    exit-zero = false

    [[tool.ckptdiff.snapshots]]        # what `ckptdiff check` (and the pre-commit hook) diffs
    snapshot = "snapshots/model.manifest.json"
    model = "mypkg.models:build"
    model-kwargs = {num_labels = 3}
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ckptdiff.ci.policy import Policy, SnapshotCheck
from ckptdiff.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "pyproject.toml"
_SNAPSHOT_KEYS = ("snapshot", "model", "model-kwargs")


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` that has ``[tool.ckptdiff]``."""
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file() and _tool_table(candidate) is not None:
            return candidate
    return None


def load_policy(start: Path | None = None, config: Path | None = None) -> Policy:
    """The policy of ``config`` (or of the file :func:`find_config` finds); defaults without one."""
    path = config if config is not None else find_config(start)
    if path is None:
        return Policy()
    table = _tool_table(path)
    return policy_from_table(table or {}, path)


def _tool_table(path: Path) -> Mapping[str, Any] | None:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: invalid TOML: {' '.join(str(exc).split())}") from None
    table = document.get("tool", {}).get("ckptdiff")
    if table is not None and not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.ckptdiff] must be a table")
    return table


def policy_from_table(table: Mapping[str, Any], path: Path) -> Policy:
    """Validate ``[tool.ckptdiff]`` of ``path`` (keys with ``-`` or ``_``) into a policy."""
    def bad(setting: str, expected: str, value: object) -> UsageError:
        return UsageError(f"{path}: [tool.ckptdiff] {setting}: expected {expected}, "
                          f"got {value!r}")

    settings = {str(k).replace("_", "-"): v for k, v in table.items()}
    known = tuple(_PARSERS) + ("snapshots",)
    for name in settings:
        if name not in known:
            raise UsageError(f"{path}: [tool.ckptdiff] unknown setting {name!r} "
                             f"(known: {', '.join(known)})")
    values = {name.replace("-", "_"): _PARSERS[name](settings[name], name, bad)
              for name in _PARSERS if name in settings}
    snapshots = _snapshots(settings.get("snapshots", []), path, bad)
    return Policy(**values, snapshots=snapshots, root=path.parent.resolve())


Bad = Callable[[str, str, object], UsageError]


def _fail_on(value: object, name: str, bad: Bad) -> str:
    if value not in ("error", "warning"):
        raise bad(name, "'error' or 'warning'", value)
    return str(value)


def _globs(value: object, name: str, bad: Bad) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(name, "a list of glob strings", value)
    return tuple(value)


def _flag(value: object, name: str, bad: Bad) -> bool:
    if not isinstance(value, bool):
        raise bad(name, "true or false", value)
    return value


def _confidence(value: object, name: str, bad: Bad) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise bad(name, "a number from 0 to 1", value)
    return float(value)


_PARSERS: dict[str, Callable[[object, str, Bad], Any]] = {
    "fail-on": _fail_on, "ignore": _globs, "allow-missing": _globs, "allow-unexpected": _globs,
    "allow-rename": _flag, "rename-confidence": _confidence, "exit-zero": _flag,
}


def _snapshots(value: object, path: Path, bad: Bad) -> tuple[SnapshotCheck, ...]:
    if not isinstance(value, list):
        raise bad("snapshots", "a list of tables (snapshot, model)", value)
    checks = []
    for index, entry in enumerate(value):
        where = f"snapshots[{index}]"
        if not isinstance(entry, dict):
            raise bad(where, "a table with snapshot and model", entry)
        entry = {str(k).replace("_", "-"): v for k, v in entry.items()}
        unknown = sorted(set(entry) - set(_SNAPSHOT_KEYS))
        if unknown:
            raise bad(where, f"only {', '.join(_SNAPSHOT_KEYS)}", unknown[0])
        for required in ("snapshot", "model"):
            if not isinstance(entry.get(required), str) or not entry[required]:
                raise bad(f"{where}.{required}", "a non-empty string", entry.get(required))
        kwargs = entry.get("model-kwargs", {})
        if not isinstance(kwargs, dict):
            raise bad(f"{where}.model-kwargs", "a table of keyword arguments", kwargs)
        checks.append(SnapshotCheck(entry["snapshot"], entry["model"], kwargs))
    return tuple(checks)
