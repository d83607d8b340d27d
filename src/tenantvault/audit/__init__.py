"""The audit trail: events, HMAC of sensitive values, hash-chained sinks, and the broker."""

from tenantvault.audit._broker import AuditBroker, Incident
from tenantvault.audit._chain import VerifyReport, verify_lines
from tenantvault.audit._events import AuditEvent
from tenantvault.audit._redact import HMAC_PREFIX, Redactor
from tenantvault.audit._sinks import AuditSink, FileSink, StdoutSink, StoreSink

__all__ = [
    "HMAC_PREFIX",
    "AuditBroker",
    "AuditEvent",
    "AuditSink",
    "FileSink",
    "Incident",
    "Redactor",
    "StdoutSink",
    "StoreSink",
    "VerifyReport",
    "verify_lines",
]
