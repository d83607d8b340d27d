"""The public surface is what `__all__` says, and `__all__` is complete (httpx's test, grown).

STYLE.md "Public surface": implementation lives in `_private` modules; each public module
re-exports by name with a sorted `__all__`. These tests keep that true as the code grows.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import tenantvault

# Names the top-level package exports although they start with an underscore.
INCLUDED_PRIVATE_MEMBERS = {"__version__"}


def _public_modules() -> list[str]:
    """Every module of the package whose dotted name has no `_private` part."""
    names = ["tenantvault"]
    for info in pkgutil.walk_packages(tenantvault.__path__, "tenantvault."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()

# Modules named without an underscore that are machinery, not the user's API: the Core's
# engines (their `Handler`, `MOUNT`, limits are shared with the Core, and `engines/` has no
# `__all__`) and the command line (its package imports its own helpers to build the parser;
# it exports `main`). Listed, with the reason, rather than silently skipped; issue 9 leaves
# renaming them to the engines' owners.
UNCHECKED = {
    name: "engine machinery shared with the Core"
    for name in PUBLIC_MODULES
    if name == "tenantvault.engines" or name.startswith("tenantvault.engines.")
} | {"tenantvault.cli": "the command line exports `main`; the rest builds its parser"}
CHECKED_MODULES = [name for name in PUBLIC_MODULES if name not in UNCHECKED]


def _ruff_order(name: str) -> tuple[int, str]:
    """ruff's RUF022 ("isort-style"): SCREAMING_CASE, then CamelCase, then the rest."""
    if name.isupper():
        return 0, name
    return (1 if name[0].isupper() else 2), name


def _public_definitions(module: ModuleType) -> set[str]:
    """The public names `module` defines itself, or takes from a private module to re-export.

    Read from its source, so that names it merely imports to use (`Any`, a sibling's class)
    do not count, while every constant, alias, function and class it defines does.
    """
    source = Path(inspect.getfile(module)).read_text(encoding="utf-8")
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.module and module.__name__ != "__main__":
            # A package re-exports from its own private modules: those names are its surface.
            source_module = node.module
            if source_module.startswith(module.__name__ + "._"):
                names.update(alias.asname or alias.name for alias in node.names)
    return {name for name in names if not name.startswith("_")}


def test_there_are_public_modules_to_check() -> None:
    """The walk finds the package's public modules (an empty list would check nothing)."""
    assert {"tenantvault", "tenantvault.server", "tenantvault.testing"} <= set(CHECKED_MODULES)


@pytest.mark.parametrize("name", CHECKED_MODULES)
def test_all_is_sorted_unique_and_names_only_public_members_that_exist(name: str) -> None:
    """`from module import *` gives exactly the listed names, each of them real and public."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(set(exported), key=_ruff_order)
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} is in __all__ but does not exist"
        assert not member.startswith("_") or member in INCLUDED_PRIVATE_MEMBERS, member


@pytest.mark.parametrize("name", CHECKED_MODULES)
def test_every_public_definition_is_exported(name: str) -> None:
    """A public name a module defines is in its `__all__`; otherwise it is `_private`."""
    module = importlib.import_module(name)
    missing = _public_definitions(module) - set(getattr(module, "__all__", ()))
    assert not missing, f"{name} defines public names missing from __all__: {sorted(missing)}"


def test_the_package_exports_every_public_member_it_holds() -> None:
    """httpx's `test_all_imports_are_exported`: every public attribute of `tenantvault`
    (submodules aside) is in `__all__`, and the other way round."""
    members = {
        member
        for member, value in vars(tenantvault).items()
        if not isinstance(value, ModuleType)
        and (not member.startswith("_") or member in INCLUDED_PRIVATE_MEMBERS)
    }
    assert members == set(tenantvault.__all__)


def test_every_type_of_the_python_api_is_exported() -> None:
    """What the Python API takes and returns can be named from `tenantvault` (annotations)."""
    exported = set(tenantvault.__all__)
    for name in (
        "BatchResult",
        "DataKey",
        "KeyInfo",
        "KeyMetadata",
        "Secret",
        "TenantInfo",
        "TokenInfo",
        "TokenLookup",
        "Transit",
        "VersionInfo",
        "VersionState",
    ):
        assert name in exported, name


# In modules other engineers own right now (issue 9 left them alone); the test fails only on
# a public callable missing a docstring that is not listed here.
DOCSTRINGS_PENDING = {
    "Core.aclose",
    "Core.start",
    "AuditHook.refused",
    "AuditHook.request",
    "AuditHook.response",
}


def _undocumented(name: str, value: object) -> list[str]:
    if isinstance(value, type):
        missing = [] if value.__doc__ else [name]
        for member, attribute in vars(value).items():
            if member.startswith("_"):
                continue
            function = attribute.__func__ if isinstance(attribute, classmethod) else attribute
            function = function.fget if isinstance(function, property) else function
            if inspect.isfunction(function) and not function.__doc__:
                missing.append(f"{name}.{member}")
        return missing
    if inspect.isfunction(value) and not value.__doc__:
        return [name]
    return []


def test_every_public_class_function_and_method_has_a_docstring() -> None:
    """`help(tenantvault.X)` says what X does, for every X in `__all__` and its methods."""
    missing = {
        entry
        for member in tenantvault.__all__
        for entry in _undocumented(member, getattr(tenantvault, member))
    }
    assert missing <= DOCSTRINGS_PENDING, sorted(missing - DOCSTRINGS_PENDING)
