"""The transit secrets engine, split by job: the engine (routes and handlers), the key store
(records and the parsed-keyring cache) and the rotation scheduler."""

from __future__ import annotations

from tenantvault.engines.transit._engine import TransitEngine
from tenantvault.engines.transit._keys import KeyStore
from tenantvault.engines.transit._rotation import MountSource, RotationScheduler, run_rotation

__all__ = ["KeyStore", "MountSource", "RotationScheduler", "TransitEngine", "run_rotation"]
