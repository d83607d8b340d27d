"""ACL evaluation: the rule that decides for a path, its capabilities and its parameter check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

from tenantvault._policy._parameters import Constraints, RuleParameters
from tenantvault._policy._rules import Capability, Policy, has_segment_wildcards
from tenantvault._policy._syntax import shown
from tenantvault._request import Operation

__all__ = ["ACL"]

_CACHE_SIZE: Final = 1024
# Longer paths are evaluated but not cached, so the cache stays small whatever callers send.
_MAX_CACHED_PATH: Final = 1024
# The operations whose data Vault checks against parameter constraints (acl.go
# AllowOperation): list and delete carry no parameters a policy constrains.
_CHECKED_OPERATIONS: Final = frozenset(
    {Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.PATCH}
)

_ROOT: Final = frozenset({"root"})
_DENIED: Final = frozenset({Capability.DENY.value})
_BITS: Final[dict[str, int]] = {c.value: 1 << i for i, c in enumerate(Capability)}
_DENY_BIT: Final = _BITS[Capability.DENY]
# Every bitmap's answer, built once, so evaluation returns shared frozensets.
_NAMES: Final[tuple[frozenset[str], ...]] = tuple(
    _DENIED
    if bits == 0 or bits & _DENY_BIT
    else frozenset(name for name, bit in _BITS.items() if bits & bit)
    for bits in range(1 << len(_BITS))
)


@dataclass(frozen=True, slots=True)
class _Grant:
    """What the merged rules of one pattern give: capability bits, parameter constraints."""

    bits: int
    constraints: Constraints | None = None
    # A rule with `min_wrapping_ttl`/`max_wrapping_ttl` admits only response-wrapped
    # requests (Vault's AllowOperation); no request is wrapped here yet, so it admits none.
    wrapped_only: bool = False


_NOTHING: Final = _Grant(0)


# Vault's priority order among matching non-exact patterns, as a sort key where the larger
# tuple wins: (position of the first wildcard or glob, not a glob, minus the number of '+'
# segments, length without the '*', the pattern itself).
_Rank: TypeAlias = tuple[int, bool, int, int, str]


@dataclass(frozen=True, slots=True)
class _SegmentRule:
    parts: tuple[str, ...]
    is_prefix: bool
    rank: _Rank
    grant: _Grant

    def _part_matches(self, index: int, segment: str) -> bool:
        # As vault/acl.go: a '+' matches one segment, even an empty one; the last part of a
        # trailing-glob pattern matches by prefix within its segment.
        part = self.parts[index]
        if part == "+" or part == segment:
            return True
        return self.is_prefix and index == len(self.parts) - 1 and segment.startswith(part)

    def matches(self, path_parts: list[str]) -> bool:
        """Whether the pattern matches the path (a trailing glob: also anything after it)."""
        count = len(self.parts)
        if len(path_parts) < count or (not self.is_prefix and len(path_parts) != count):
            return False
        return all(self._part_matches(index, path_parts[index]) for index in range(count))

    def reaches(self, mount_parts: list[str]) -> bool:
        """vault/acl.go's "bareMount" walk: every segment of the mount (the parts before its
        trailing '/') is matched by this pattern's part at the same position."""
        count = len(mount_parts) - 1
        if count < 1 or len(self.parts) < count:
            return False
        return all(self._part_matches(index, mount_parts[index]) for index in range(count))


def _grants(bits: int) -> bool:
    return bits != 0 and not bits & _DENY_BIT


def _bits(capabilities: frozenset[str]) -> int:
    bits = 0
    for capability in capabilities:
        bits |= _BITS[capability]
    return bits


def _merged(rules: list[tuple[int, RuleParameters, bool]]) -> _Grant:
    """One pattern's rules as one grant: capabilities united, constraints merged."""
    bits = 0
    for rule_bits, _, _ in rules:
        bits |= rule_bits
    if bits & _DENY_BIT:
        # Vault keeps only `deny` and drops the constraints: nothing is left to check.
        return _Grant(_DENY_BIT)
    return _Grant(
        bits,
        Constraints.merge(parameters for _, parameters, _ in rules),
        wrapped_only=any(wrapping for _, _, wrapping in rules),
    )


class ACL:
    """The effective permissions of a set of policies, compiled for fast lookups.

    Semantics are Vault's. Rules with the same pattern, across policies or within one, are
    merged: capabilities are united, parameter constraints merged, and `deny` in any of them
    leaves only `deny`. Then one rule decides: an exact pattern first; otherwise the
    highest-priority matching glob or `+` pattern by Vault's documented order. Capabilities
    are never united across different patterns, and no matching rule means no access.

    `root=True` builds the root ACL, which grants everything; `policies` are then ignored.
    """

    __slots__ = ("_cache", "_exact", "_prefix", "_prefix_lengths", "_root", "_segment")

    def __init__(self, policies: Iterable[Policy], *, root: bool = False) -> None:
        self._root = root
        self._cache: dict[tuple[str, bool], _Grant] = {}
        by_pattern: dict[str, list[tuple[int, RuleParameters, bool]]] = {}
        if not root:
            for policy in policies:
                for rule in policy.rules:
                    parameters = (
                        rule.allowed_parameters,
                        rule.denied_parameters,
                        rule.required_parameters,
                    )
                    wrapping = bool(rule.min_wrapping_ttl or rule.max_wrapping_ttl)
                    by_pattern.setdefault(rule.pattern, []).append(
                        (_bits(rule.capabilities), parameters, wrapping)
                    )
        self._exact: dict[str, _Grant] = {}
        self._prefix: dict[str, _Grant] = {}
        segment: list[_SegmentRule] = []
        for pattern, rules in by_pattern.items():
            grant = _merged(rules)
            if has_segment_wildcards(pattern):
                is_prefix = pattern.endswith("*")
                body = pattern.removesuffix("*")
                parts = tuple(body.split("/"))
                rank = (pattern.index("+"), not is_prefix, -parts.count("+"), len(body), body)
                segment.append(_SegmentRule(parts, is_prefix, rank, grant))
            elif pattern.endswith("*"):
                self._prefix[pattern[:-1]] = grant
            else:
                self._exact[pattern] = grant
        # Best first, so the first segment rule that matches is the best one.
        segment.sort(key=lambda rule: rule.rank, reverse=True)
        self._segment = tuple(segment)
        # Longest first: the first stored prefix of a path is its longest-prefix glob.
        self._prefix_lengths = tuple(sorted({len(p) for p in self._prefix}, reverse=True))

    def __repr__(self) -> str:
        if self._root:
            return "ACL(root=True)"
        count = len(self._exact) + len(self._prefix) + len(self._segment)
        return f"ACL(<{count} patterns>)"

    @property
    def is_root(self) -> bool:
        """True for the root ACL, which grants everything."""
        return self._root

    def capabilities(self, path: str, *, listing: bool = False) -> frozenset[str]:
        """The capabilities granted at `path`: `{"deny"}` if none, `{"root"}` for root.

        `path` is the full request path (mount included); leading '/' are ignored. Vault
        authorizes a LIST of `secret/metadata/app` against `secret/metadata/app/`, so the
        caller appends the '/' for a LIST. `listing=True` adds Vault's fallback for list
        operations (and for its sys/capabilities endpoint): a rule for the path without
        its trailing '/' applies when nothing matches the path itself.
        """
        if self._root:
            return _ROOT
        return _NAMES[self._grant(path, listing).bits]

    def allows(self, path: str, capability: str) -> bool:
        """True if `capability` is granted at `path`; `list` uses the list fallback.

        A capability check only, like Vault's sys/capabilities: parameter constraints are
        not consulted, so authorizing a request takes `permits`. `deny` is never "allowed".
        An unknown capability is a programming error.
        """
        if capability not in _BITS:
            raise ValueError(f"unknown capability {shown(capability)}")
        if capability == Capability.DENY:
            return False
        if self._root:
            return True
        return capability in self.capabilities(path, listing=capability == Capability.LIST)

    def permits(
        self,
        path: str,
        capability: str,
        *,
        operation: Operation,
        data: Mapping[str, object] | None,
    ) -> bool:
        """True if a request may proceed: `allows(path, capability)`, and its data passes.

        The rule that grants the capability decides on the parameters too. As in Vault, a
        read, create, update or patch must meet that rule's required, denied and allowed
        parameters (`data` holds the request's top-level parameters: the JSON body, or the
        query of a read); a list or delete is not checked. Root passes everything.
        """
        if not self.allows(path, capability):
            return False
        if self._root:
            return True
        grant = self._grant(path, capability == Capability.LIST)
        if grant.wrapped_only:
            return False
        if operation not in _CHECKED_OPERATIONS:
            return True
        return grant.constraints is None or grant.constraints.permits(data)

    def has_access_under(self, mount: str) -> bool:
        """True if some rule grants anything at `mount` (ending in '/') or below it.

        Vault's `hasMountAccess`, which guards sys/internal/ui/mounts/<mount>: the mount
        itself, then any exact or glob rule under it, then any `+` rule that can reach it;
        rules that deny or grant nothing do not count.
        """
        if self._root:
            return True
        mount = mount.lstrip("/")
        if Capability.DENY not in self.capabilities(mount, listing=True):
            return True
        for rules in (self._exact, self._prefix):
            for pattern, grant in rules.items():
                if pattern.startswith(mount) and _grants(grant.bits):
                    return True
        parts = mount.split("/")
        return any(_grants(rule.grant.bits) and rule.reaches(parts) for rule in self._segment)

    def _grant(self, path: str, listing: bool) -> _Grant:
        key = (path, listing)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        grant = self._evaluate(path.lstrip("/"), listing) or _NOTHING
        if len(path) <= _MAX_CACHED_PATH:
            if len(self._cache) >= _CACHE_SIZE:
                # Dropping everything is crude but cheap and never races with readers; a
                # busy token re-warms within a few requests.
                self._cache.clear()
            self._cache[key] = grant
        return grant

    def _evaluate(self, path: str, listing: bool) -> _Grant | None:
        # The order of vault/acl.go AllowOperation: exact rules win outright.
        trimmed = path[:-1] if listing and path.endswith("/") else None
        grant = self._exact.get(path)
        if grant is None and trimmed is not None:
            grant = self._exact.get(trimmed)
        if grant is None:
            grant = self._non_exact(path)
        if grant is None and trimmed is not None:
            grant = self._non_exact(trimmed)
        return grant

    def _non_exact(self, path: str) -> _Grant | None:
        best: _Grant | None = None
        best_rank: _Rank | None = None
        size = len(path)
        for length in self._prefix_lengths:
            if length <= size:
                grant = self._prefix.get(path[:length])
                if grant is not None:
                    best = grant
                    best_rank = (length, False, 0, length, path[:length])
                    break
        if self._segment:
            parts = path.split("/")
            for rule in self._segment:
                if best_rank is not None and rule.rank < best_rank:
                    break
                if rule.matches(parts):
                    return rule.grant
        return best
