"""Scheduled rotation of KV v2 secrets, AWS Secrets Manager style (`sys/rotation/*`).

create → set → test → finish, with the pending value sealed outside the KV versions, one
rotation per secret at a time across instances (a check-and-set lease), retries with
backoff, and the `random`, `webhook` and `database` rotators. Modules:

- `_settings`  the operator's settings and the webhook allow-list check
- `_schedule`  period / cron: when a secret rotates next
- `_record`    the rotation record (config, status, lease, pending) and its store
- `_secrets`   the KV side, through the Core as the operator
- `_rotators`  the rotator protocol; `random`, `database`
- `_webhook`   the `webhook` rotator
- `_runner`    one rotation: lease, phases, failure and retry
- `_engine`    the `sys/rotation/*` routes
- `_expiry`    `expires_at` and stale secrets
- `_scheduler` the due-rotation pass and its supervised loop
"""

from __future__ import annotations

from tenantvault.rotation._engine import RotationEngine
from tenantvault.rotation._runner import RotationBusyError, RotationFailedError
from tenantvault.rotation._scheduler import RotationScheduler, run_scheduler
from tenantvault.rotation._settings import RotationSettings, is_allowed_url
from tenantvault.rotation._webhook import SIGNATURE_HEADER, sign

__all__ = [
    "SIGNATURE_HEADER",
    "RotationBusyError",
    "RotationEngine",
    "RotationFailedError",
    "RotationScheduler",
    "RotationSettings",
    "is_allowed_url",
    "run_scheduler",
    "sign",
]
