"""Where each tenant's data lives upstream: the `namespace` and `prefix` tenancy strategies.

Pure functions from (tenant, mount-relative path) to an upstream (namespace, path), and the
upstream policy that reaches exactly what a tenant's mapping can produce. Both strategies are
injective — two different (tenant, path) pairs never land on the same upstream path — and the
policy of one tenant never reaches a path another tenant's mapping produces: the property
tests in `tests/upstream/test_tenancy.py` check both.

- `namespace` (OpenBao >= 2.3, Vault Enterprise): tenant `acme` is the upstream namespace
  `<root>/acme` with its own KV v2 mount at `secret/` and transit at `transit/`; a request
  keeps its mount-relative path and only gains the namespace.
- `prefix` (any upstream): one shared KV v2 mount and one shared transit mount (in the
  operator's namespace, if any). KV paths gain `<root>/acme/` after the section
  (`secret/data/x` -> `<kv-mount>/data/<root>/acme/x`); transit key names gain
  `<label>.acme.` where `<label>` is the root with '/' written as '.'. Tenant ids contain no
  '.', so the first '.' after the label ends the tenant id and the mapping is reversible.

Transit key names are narrower upstream than here: Vault's key-name pattern is
`\\w([\\w.-]*\\w)?`, so a name with `@ = : ~` or one ending in '.' or '-' cannot be stored
there; `transit_name` refuses it with 400 rather than rewriting it into some other name.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from tenantvault._exceptions import InvalidRequestError
from tenantvault._paths import validate_tenant_id

__all__ = [
    "KV_SECTIONS",
    "NamespaceTenancy",
    "Placement",
    "PrefixTenancy",
    "Strategy",
    "Tenancy",
    "check_root",
]

# The KV v2 sections whose path is a secret path; `config` is the mount's own setting.
KV_SECTIONS: Final = frozenset({"data", "metadata", "delete", "undelete", "destroy", "subkeys"})
# Transit sections whose next segment is a key name; `datakey/<kind>/<name>` has it second.
_TRANSIT_KEYED: Final = frozenset(
    {"keys", "encrypt", "decrypt", "rewrap", "hmac", "sign", "verify"}
)
# Vault's framework.GenericNameRegex, which every transit key path uses upstream.
_UPSTREAM_KEY_NAME: Final = re.compile(r"\w(?:[\w.-]*\w)?\Z", re.ASCII)
# A root (namespace path or prefix): lowercase segments like tenant ids, '_' allowed too.
_ROOT_SEGMENT: Final = re.compile(r"[a-z0-9_][a-z0-9_-]{0,62}\Z")
# The transit paths of a tenant in the prefix strategy, each followed by the key name.
_PREFIX_TRANSIT_POLICY_PATHS: Final = (
    "keys/",
    "encrypt/",
    "decrypt/",
    "rewrap/",
    "hmac/",
    "sign/",
    "verify/",
    "datakey/+/",
)
_ALL: Final = ("create", "read", "update", "patch", "delete", "list")
# The areas of a tenant's namespace its token never reaches, whatever the mounts ('*'): the
# more specific rule wins in Vault's ACL, and `auth/token/renew-self` (exact) beats these.
_NAMESPACE_DENIED: Final = ("sys", "auth", "identity", "cubbyhole")
# A tenant token renews itself (`ScopedTokens`); it has no default policy to grant that.
_RENEW_SELF: Final = 'path "auth/token/renew-self" { capabilities = ["update"] }'  # _rule's form


class Strategy(enum.StrEnum):
    """How tenants are laid out upstream."""

    NAMESPACE = "namespace"
    PREFIX = "prefix"


@dataclass(frozen=True, slots=True)
class Placement:
    """One upstream target: the namespace to send (`X-Vault-Namespace`, '' for none) and the
    path inside it, without `/v1/`."""

    namespace: str
    path: str


def check_root(root: str) -> str:
    """`root` if it is a usable upstream root ('tenantvault', 'platform/tenantvault')."""
    segments = root.split("/")
    if not all(_ROOT_SEGMENT.match(segment) for segment in segments):
        raise InvalidRequestError(
            "invalid upstream root: use '/'-separated segments of lowercase ASCII letters, "
            "digits, '-' and '_'"
        )
    return root


def _rule(path: str, *capabilities: str) -> str:
    """One policy rule: `path "<path>" { capabilities = [...] }`."""
    quoted = ", ".join(f'"{capability}"' for capability in capabilities)
    return f'path "{path}" {{ capabilities = [{quoted}] }}'


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _split(rest: str) -> tuple[str, str]:
    section, _, sub = rest.partition("/")
    return section, sub


class NamespaceTenancy:
    """Tenant `acme` is the upstream namespace `<root>/acme`, with mounts `secret/` and
    `transit/` of its own; paths inside it are the tenant's own paths, unchanged."""

    strategy: Final = Strategy.NAMESPACE
    kv_mount: Final = "secret"
    transit_mount: Final = "transit"

    def __init__(self, root: str = "tenantvault") -> None:
        self.root = check_root(root)

    def namespace(self, tenant: str) -> str:
        """The upstream namespace that holds everything of `tenant` (its token's scope)."""
        return f"{self.root}/{validate_tenant_id(tenant)}"

    def _placed(self, tenant: str) -> str:
        # Where a request of `tenant` goes: the one function the request mappings share,
        # kept apart from the token's scope (`namespace`) on purpose — a test replaces it
        # to prove that the upstream itself refuses a wrong mapping.
        return f"{self.root}/{validate_tenant_id(tenant)}"

    def kv(self, tenant: str, rest: str) -> Placement:
        """The upstream target of `rest`, relative to the tenant's `secret/` mount."""
        return Placement(self._placed(tenant), f"{self.kv_mount}/{rest}")

    def transit(self, tenant: str, rest: str) -> Placement:
        """The upstream target of `rest`, relative to the tenant's `transit/` mount."""
        _check_transit_names(rest)
        return Placement(self._placed(tenant), f"{self.transit_mount}/{rest}")

    def transit_name(self, tenant: str, upstream_name: str) -> str | None:
        """The tenant's name of an upstream transit key (here: the same name)."""
        return upstream_name

    def token_namespace(self, tenant: str) -> str:
        """Where the tenant's upstream policy and token live."""
        return self.namespace(tenant)

    def policy_name(self, tenant: str) -> str:
        """The name of the tenant's upstream policy and token role (in its namespace)."""
        validate_tenant_id(tenant)
        return "tenantvault-tenant"

    def policy(self, tenant: str) -> str:
        """The upstream policy of the tenant's token: the mounts of its namespace and
        renewing itself, nothing else (the namespace boundary keeps it out of every other
        tenant). Any mount: tenantvault enables a tenant's upstream engines there with its
        own token (`engines/_passthrough`); the tenant's token can never enable one itself,
        nor touch the namespace's policies, auth methods, identity or leases."""
        return (
            "\n".join(
                [
                    _rule(f"{self.kv_mount}/*", *_ALL),
                    _rule(f"{self.transit_mount}/*", *_ALL),
                    _rule("*", *_ALL),
                    *(_rule(f"{area}/*", "deny") for area in _NAMESPACE_DENIED),
                    # The leases of the namespace's dynamic secrets, which tenantvault maps
                    # to the tenant's own leases (exact paths: they beat `sys/*`).
                    _rule("sys/leases/renew", "update"),
                    _rule("sys/leases/revoke", "update"),
                    _RENEW_SELF,
                ]
            )
            + "\n"
        )

    def service_policy(self) -> str:
        """The upstream policy tenantvault's own token needs for the tenants (in the root
        namespace): their namespaces, and in each its mounts, policy and token role."""
        tenants = f"{self.root}/+"
        name = "tenantvault-tenant"
        return (
            "\n".join(
                [
                    _rule(f"sys/namespaces/{self.root}", "read", "create", "update"),
                    _rule(f"{self.root}/sys/namespaces/*", "read", "create", "update", "delete"),
                    _rule(f"{tenants}/sys/mounts/*", "create", "update", "delete"),
                    _rule(f"{tenants}/sys/policies/acl/{name}", "create", "update", "delete"),
                    _rule(f"{tenants}/auth/token/roles/{name}", "create", "update"),
                    # sudo: OpenBao requires it to mint a token in a child namespace.
                    _rule(f"{tenants}/auth/token/create/{name}", "update", "sudo"),
                ]
            )
            + "\n"
        )


class PrefixTenancy:
    """Tenant data in shared mounts under `<root>/<tenant>/` (KV) and `<label>.<tenant>.`
    (transit key names); see the module docstring."""

    strategy: Final = Strategy.PREFIX

    def __init__(
        self,
        root: str = "tenantvault",
        *,
        kv_mount: str = "secret",
        transit_mount: str = "transit",
        namespace: str = "",
    ) -> None:
        self.root = check_root(root)
        self.label = root.replace("/", ".")
        self.kv_mount = kv_mount.strip("/")
        self.transit_mount = transit_mount.strip("/")
        # The operator's upstream namespace holding the shared mounts ('' for none).
        self.operator_namespace = namespace.strip("/")

    def _placed(self, tenant: str) -> str:
        # Where a request of `tenant` goes (see NamespaceTenancy._placed): the tenant id as
        # the KV folder and transit name prefix use it; the policy uses `validate_tenant_id`.
        return validate_tenant_id(tenant)

    def kv_base(self, tenant: str) -> str:
        """The folder of the shared KV mount that holds the tenant's secrets."""
        return f"{self.root}/{validate_tenant_id(tenant)}"

    def kv(self, tenant: str, rest: str) -> Placement:
        """`<section>/<path>` -> `<kv-mount>/<section>/<root>/<tenant>/<path>`.

        `config` (the mount's settings) has no per-tenant equivalent: `InvalidRequestError`.
        """
        section, sub = _split(rest)
        if section not in KV_SECTIONS:
            raise InvalidRequestError(
                "the kv mount configuration is shared by every tenant on this upstream "
                "(prefix tenancy): set max_versions, cas_required and delete_version_after "
                "per secret with secret/metadata/<path> instead"
            )
        # An empty `sub` is the tenant's root folder (a LIST of `metadata/`).
        return Placement(
            self.operator_namespace,
            f"{self.kv_mount}/{section}/{self.root}/{self._placed(tenant)}/{sub}",
        )

    def key_prefix(self, tenant: str) -> str:
        """What every upstream transit key name of the tenant starts with."""
        return f"{self.label}.{validate_tenant_id(tenant)}."

    def transit_key(self, tenant: str, name: str) -> str:
        """The upstream name of the tenant's transit key `name`."""
        _check_upstream_key_name(name)
        return f"{self.label}.{self._placed(tenant)}.{name}"

    def transit_name(self, tenant: str, upstream_name: str) -> str | None:
        """The tenant's name of an upstream key, or None if the key is not the tenant's."""
        prefix = self.key_prefix(tenant)
        if not upstream_name.startswith(prefix) or len(upstream_name) == len(prefix):
            return None
        return upstream_name[len(prefix) :]

    def transit(self, tenant: str, rest: str) -> Placement:
        """The tenant's transit path with its key name mapped (`keys/` listing: the shared
        mount's listing, which the engine filters; random/ and hash/ have no key)."""
        segments = rest.split("/") if rest else []
        if len(segments) >= 2 and segments[0] in _TRANSIT_KEYED:
            segments[1] = self.transit_key(tenant, segments[1])
        elif len(segments) >= 3 and segments[0] == "datakey":
            segments[2] = self.transit_key(tenant, segments[2])
        return Placement(self.operator_namespace, _join(self.transit_mount, *segments))

    def token_namespace(self, tenant: str) -> str:
        """Where the tenant's upstream policy and token live (the operator's namespace)."""
        validate_tenant_id(tenant)
        return self.operator_namespace

    def policy_name(self, tenant: str) -> str:
        """The tenant's upstream policy name; '.' keeps it apart from any other policy."""
        return f"{self.label}.tenant.{validate_tenant_id(tenant)}"

    def policy(self, tenant: str) -> str:
        """The upstream policy of the tenant's token: its folder of the KV mount and its key
        names in the transit mount, nothing more (no listing of either shared mount)."""
        base = self.kv_base(tenant)
        lines = [
            _rule(f"{self.kv_mount}/{section}/{base}/*", *_ALL) for section in sorted(KV_SECTIONS)
        ]
        prefix = self.key_prefix(tenant)
        lines += [
            _rule(f"{self.transit_mount}/{path}{prefix}*", *_ALL)
            for path in _PREFIX_TRANSIT_POLICY_PATHS
        ]
        # Key-less transit endpoints: nobody's data, so every tenant may use them.
        lines += [
            _rule(f"{self.transit_mount}/random", "update"),
            _rule(f"{self.transit_mount}/random/*", "update"),
            _rule(f"{self.transit_mount}/hash", "update"),
            _rule(f"{self.transit_mount}/hash/*", "update"),
            _RENEW_SELF,
        ]
        return "\n".join(lines) + "\n"

    def service_policy(self) -> str:
        """The upstream policy tenantvault's own token needs for the tenants (in the
        operator's namespace): the shared mounts, the tenants' policies and token roles, and
        wiping a deleted tenant's secrets and keys."""
        kv, transit, label = self.kv_mount, self.transit_mount, self.label
        return (
            "\n".join(
                [
                    _rule(f"sys/mounts/{kv}", "create", "update"),
                    _rule(f"sys/mounts/{transit}", "create", "update"),
                    _rule(f"sys/policies/acl/{label}.tenant.*", "create", "update", "delete"),
                    _rule(f"auth/token/roles/{label}.tenant.*", "create", "update", "delete"),
                    _rule(f"auth/token/create/{label}.tenant.*", "update"),
                    _rule(f"{kv}/metadata/{self.root}/*", "list", "delete"),
                    _rule(f"{transit}/keys", "list"),
                    _rule(f"{transit}/keys/{label}.*", "update", "delete"),
                ]
            )
            + "\n"
        )


Tenancy = NamespaceTenancy | PrefixTenancy


def _check_upstream_key_name(name: str) -> None:
    if not _UPSTREAM_KEY_NAME.match(name):
        raise InvalidRequestError(
            "this key name cannot be stored on the upstream: use ASCII letters, digits, "
            "'_', '-' and '.', starting and ending with a letter, digit or '_'"
        )


def _check_transit_names(rest: str) -> None:
    """The namespace strategy keeps names as they are, so the upstream's rule applies too."""
    segments = rest.split("/") if rest else []
    if len(segments) >= 2 and segments[0] in _TRANSIT_KEYED:
        _check_upstream_key_name(segments[1])
    elif len(segments) >= 3 and segments[0] == "datakey":
        _check_upstream_key_name(segments[2])
