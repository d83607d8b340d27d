"""A pki mount's `config/crl`: OpenBao 2.7's fields, defaults, checks and texts.

OpenBao keeps the durations as the strings written ("90m" reads back "90m", a JSON 3600 reads
back "3600") and checks them with Go's `ParseDurationSecond`, which accepts a sign; the
project's duration parser refuses signs and has no Go texts, so `go_duration` wraps it with
the sign and the texts. OpenBao 2.7 has no `unified_crl`, `unified_crl_on_existing_paths` or
`cross_cluster_revocation` (Vault Enterprise's): like OpenBao, the route does not declare
them, so the Core answers them with "Endpoint ignored these unrecognized parameters".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tenantvault._durations import duration_seconds, format_duration
from tenantvault._exceptions import InvalidRequestError
from tenantvault._go_text import go_quote
from tenantvault.engines.pki._store import PkiStore

__all__ = ["CRL_CONFIG_FIELDS", "CrlConfig", "go_duration", "load_crl_config", "updated"]

_BOOLS: Final = (
    "disable",
    "ocsp_disable",
    "auto_rebuild",
    "enable_delta",
    "allow_expired_cert_revocation",
)
_DURATIONS: Final = (
    "expiry",
    "ocsp_expiry",
    "auto_rebuild_grace_period",
    "delta_rebuild_interval",
)
CRL_CONFIG_FIELDS: Final = frozenset({*_BOOLS, *_DURATIONS})
_GO_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_INTEGER: Final = re.compile(r"[+-]?[0-9]+\Z")
_NUMBER: Final = re.compile(r"[0-9]*(?:\.[0-9]*)?")
_UNIT: Final = re.compile(r"[^0-9.]*")
_GO_UNITS: Final = frozenset({"ns", "us", "\u00b5s", "\u03bcs", "ms", "s", "m", "h"})


@dataclass(frozen=True, slots=True)
class CrlConfig:
    """`config/crl` as OpenBao stores it (durations as written)."""

    expiry: str = "72h"
    disable: bool = False
    ocsp_disable: bool = False
    ocsp_expiry: str = "12h"
    auto_rebuild: bool = False
    auto_rebuild_grace_period: str = "12h"
    enable_delta: bool = False
    delta_rebuild_interval: str = "15m"
    allow_expired_cert_revocation: bool = False
    # OpenBao's record version: 1 until the record has been read once after its first write.
    version: int = 1

    def data(self) -> dict[str, Any]:
        """The read-back of `GET config/crl`."""
        fields = dataclasses.asdict(self)
        del fields["version"]
        return dict(sorted(fields.items()))

    def record(self) -> dict[str, Any]:
        """What is stored: the read-back and the record's version."""
        return dataclasses.asdict(self)

    @property
    def expiry_seconds(self) -> float:
        """The lifetime of a CRL (its nextUpdate is its thisUpdate plus this)."""
        return _or_zero(self.expiry)

    @property
    def grace_seconds(self) -> float:
        """How long before its nextUpdate an `auto_rebuild` CRL is signed afresh."""
        return _or_zero(self.auto_rebuild_grace_period)

    @property
    def delta_interval_seconds(self) -> float:
        """The least time between two delta CRLs built for new revocations."""
        return _or_zero(self.delta_rebuild_interval)


_DEFAULT: Final = CrlConfig()


def _or_zero(text: str) -> float:
    """A duration written to `config/crl` (checked then), 0 where it does not parse: OpenBao
    ignores that error when comparing the settings, and "" is 0 to Go as well."""
    try:
        return go_duration(text)
    except ValueError:
        return 0.0


def go_duration(text: str) -> float:
    """Seconds from Go's `ParseDurationSecond` grammar ("" is 0; signs allowed); ValueError
    with Go's own text otherwise."""
    if text == "":
        return 0.0
    if _INTEGER.match(text):
        return float(int(text))
    if text.endswith("d"):
        if _INTEGER.match(text[:-1]):
            return float(int(text[:-1])) * 86400
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text[:-1])}: invalid syntax")
    sign = -1.0 if text[0] == "-" else 1.0
    rest = text[1:] if text[0] in "+-" else text
    if rest == "0":
        return 0.0
    seconds = duration_seconds(rest) if rest else None
    if seconds is not None:
        return sign * seconds
    raise ValueError(_go_error(text, rest))


def _go_error(text: str, rest: str) -> str:
    """Which of Go's `time.ParseDuration` texts a duration that does not parse gets."""
    position = 0
    while position < len(rest):
        number = _NUMBER.match(rest, position)
        if number is None or not any(char.isdigit() for char in number.group(0)):
            break
        unit = _UNIT.match(rest, number.end())
        found = unit.group(0) if unit else ""
        if not found:
            return f"time: missing unit in duration {go_quote(text)}"
        if found not in _GO_UNITS:
            return f"time: unknown unit {go_quote(found)} in duration {go_quote(text)}"
        position = number.end() + len(found)
    return f"time: invalid duration {go_quote(text)}"


def _as_bool(data: Mapping[str, Any], name: str) -> bool:
    """A TypeBool field as OpenBao's framework converts it: strconv.ParseBool of the text (a
    number's too, so only 0 and 1 are booleans)."""
    value = data[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | str):
        text = str(value)
        if text in _GO_TRUE | _GO_FALSE:
            return text in _GO_TRUE
        raise InvalidRequestError(
            f'Field validation failed: error converting input for field "{name}": '
            "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax"
        )
    raise InvalidRequestError(
        f'Field validation failed: error converting input for field "{name}": '
        f"'' expected type 'bool', got unconvertible type '{_go_type(value)}'"
    )


def _go_type(value: object) -> str:
    """How Go names a JSON list or object in the framework's conversion errors."""
    return "[]interface {}" if isinstance(value, list) else "map[string]interface {}"


def _as_text(data: Mapping[str, Any], name: str) -> str:
    """A TypeString field as OpenBao's framework converts it (numbers become their digits)."""
    value = data[name]
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    raise InvalidRequestError(
        f'Field validation failed: error converting input for field "{name}": '
        f"'' expected type 'string', got unconvertible type '{_go_type(value)}'"
    )


async def load_crl_config(store: PkiStore) -> CrlConfig:
    """The mount's `config/crl`, OpenBao's defaults where never written.

    As OpenBao's getRevocationConfig: an empty `expiry` (a write of "" stores one) reads as
    "72h"; an empty `delta_rebuild_interval` reads as "15m" only in a version-1 record (the
    first one written), which reads as version 2, so a later write stores "" to stay.
    """
    stored = await store.crl_config()
    if stored is None:
        return _DEFAULT
    known = {field.name for field in dataclasses.fields(CrlConfig)}
    config = CrlConfig(**{key: value for key, value in stored.items() if key in known})
    if config.version == 1:
        interval = config.delta_rebuild_interval or _DEFAULT.delta_rebuild_interval
        config = dataclasses.replace(config, delta_rebuild_interval=interval, version=2)
    return dataclasses.replace(config, expiry=config.expiry or _DEFAULT.expiry)


def updated(config: CrlConfig, data: Mapping[str, Any]) -> CrlConfig:
    """`config` changed by a `POST config/crl`, checked in OpenBao's order with its texts."""
    present = {name for name in CRL_CONFIG_FIELDS if data.get(name) is not None}
    changes: dict[str, Any] = {name: _as_bool(data, name) for name in _BOOLS if name in present}
    for name in _DURATIONS:
        if name not in present:
            continue
        text = _as_text(data, name)
        try:
            seconds = go_duration(text)
        except ValueError as error:
            raise InvalidRequestError(f"given {name} could not be decoded: {error}") from None
        if name == "ocsp_expiry" and seconds < 0:
            shown = format_duration(int(seconds))
            raise InvalidRequestError(
                f"ocsp_expiry must be greater than or equal to 0 got: {shown}"
            )
        changes[name] = text
    new = dataclasses.replace(config, **changes)
    expiry = _or_zero(new.expiry)
    if new.auto_rebuild and _or_zero(new.auto_rebuild_grace_period) >= expiry:
        raise InvalidRequestError(
            f"CRL auto-rebuilding grace period ({new.auto_rebuild_grace_period}) must be "
            f"strictly shorter than CRL expiry ({new.expiry}) value when auto-rebuilding of "
            "CRLs is enabled"
        )
    if new.enable_delta and _or_zero(new.delta_rebuild_interval) >= expiry:
        raise InvalidRequestError(
            f"CRL delta rebuild window ({new.delta_rebuild_interval}) must be strictly shorter "
            f"than CRL expiry ({new.expiry}) value when delta CRLs are enabled"
        )
    if new.enable_delta and not new.auto_rebuild:
        raise InvalidRequestError(
            "Delta CRLs cannot be enabled when auto rebuilding is disabled as the complete CRL "
            "is always regenerated!"
        )
    return new
