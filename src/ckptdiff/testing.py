"""Fail a test when a checkpoint no longer loads into a model: :func:`assert_compatible`.

>>> from ckptdiff.testing import assert_compatible
>>> assert_compatible("released/v1.2.safetensors", build_model(),  # doctest: +SKIP
...                   ignore=["classifier.*"])

This module is also a pytest plugin (entry point ``pytest11``): the ``ckptdiff_check`` fixture is
:func:`assert_compatible` with the project's ``[tool.ckptdiff]`` policy. pytest loads the plugin in
every session, so importing it stays cheap: no framework, no pytest, not even the readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ckptdiff.ci.policy import Policy
    from ckptdiff.diffing.report import Report

__all__ = ["CompatibilityCheck", "assert_compatible"]


def assert_compatible(
    source: Any,
    target: Any,
    *,
    ignore: Iterable[str] = (),
    allow_missing: Iterable[str] = (),
    allow_unexpected: Iterable[str] = (),
    allow_rename: bool | None = None,
    fail_on: str | None = None,
    key: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    policy: Policy | None = None,
) -> Report:
    """Raise ``AssertionError`` carrying the grouped report unless ``source`` loads into ``target``.

    ``source`` and ``target`` are anything :func:`ckptdiff.diff` accepts (paths, snapshots,
    models, ``pkg.module:attr`` specs). Keyword settings are added to ``policy`` (globs) or win
    over it (``allow_rename``, ``fail_on``). Returns the policy-applied report when it passes.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    from ckptdiff.api import diff
    from ckptdiff.ci.policy import Policy

    effective = (policy or Policy()).with_overrides(
        fail_on=fail_on, ignore=ignore, allow_missing=allow_missing,
        allow_unexpected=allow_unexpected, allow_rename=allow_rename)
    report = effective.apply(diff(source, target, key=key, model_kwargs=model_kwargs))
    if effective.fails(report):
        raise AssertionError(report.to_text())
    return report


class CompatibilityCheck:
    """What the ``ckptdiff_check`` fixture gives a test: ``assert_compatible`` with a policy.

    The policy is read from the nearest ``pyproject.toml`` with ``[tool.ckptdiff]`` at or above
    ``root`` (pytest's rootdir) when the check first runs.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._policy: Policy | None = None

    @property
    def policy(self) -> Policy:
        """The project's policy (defaults when there is no ``[tool.ckptdiff]``)."""
        if self._policy is None:
            from ckptdiff.ci.config import load_policy

            self._policy = load_policy(self.root)
        return self._policy

    def __call__(self, source: Any, target: Any, **settings: Any) -> Report:
        """``assert_compatible(source, target, **settings)`` under the project's policy."""
        __tracebackhide__ = True
        return assert_compatible(source, target, policy=self.policy, **settings)


def pytest_configure(config: Any) -> None:
    """pytest hook: register the ``ckptdiff_check`` fixture (pytest is imported only now)."""
    if not config.pluginmanager.has_plugin("ckptdiff-fixtures"):
        config.pluginmanager.register(_fixtures(), "ckptdiff-fixtures")


def _fixtures() -> object:
    import pytest

    class CkptdiffFixtures:
        """The plugin's fixtures."""

        @pytest.fixture
        def ckptdiff_check(self, request: pytest.FixtureRequest) -> CompatibilityCheck:
            """Call it like ``assert_compatible``; the project's [tool.ckptdiff] policy applies."""
            return CompatibilityCheck(Path(request.config.rootpath))

    return CkptdiffFixtures()
