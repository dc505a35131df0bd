"""The exceptions ckptdiff raises for problems a user can cause.

Every error a user can trigger (a bad path, a truncated file, an unknown format, hostile content)
is a :class:`CkptdiffError` whose message is one clear line. The CLI maps ``exit_code`` to the
process exit status; nothing else in the package exits.
"""

from __future__ import annotations

from collections.abc import Iterable


class CkptdiffError(Exception):
    """Root of every error ckptdiff raises on purpose; ``exit_code`` is what the CLI returns."""

    exit_code: int = 2


class UsageError(CkptdiffError):
    """The caller asked for something that cannot work (bad option, bad model spec, bad key)."""


class UnknownFormatError(CkptdiffError):
    """No reader recognises the file."""


class CorruptFileError(CkptdiffError):
    """The file looks like a known format but is truncated, inconsistent or malformed."""


class MissingDependencyError(CkptdiffError):
    """An optional dependency is needed; the message names the pip extra that provides it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'ckptdiff[{extra}]'"
        )
        self.package = package
        self.extra = extra


class UnsafeContentError(CkptdiffError):
    """The file references code (e.g. pickle globals outside the allow-list); it was not run."""

    exit_code = 3

    def __init__(self, path: str, globals_found: Iterable[str]) -> None:
        self.globals = tuple(sorted(set(globals_found)))
        shown = ", ".join(_printable(name) for name in self.globals[:12])
        more = f" and {len(self.globals) - 12} more" if len(self.globals) > 12 else ""
        super().__init__(
            f"{path}: refused: the pickle references code outside ckptdiff's allow-list "
            f"({shown}{more}); nothing was executed"
        )
        self.path = path


def _printable(name: str, limit: int = 200) -> str:
    """A global's name as a pickle spelled it, safe for a one-line message."""
    if not name.isprintable():
        name = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return name if len(name) <= limit else name[:limit - 1] + "…"


class IncompatibleError(CkptdiffError):
    """Raised by ``Report.raise_if_incompatible``; the message is the grouped report."""

    exit_code = 1
