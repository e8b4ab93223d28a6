"""Reporting: obfuscation and the security event log.

Everything an attack leaves behind passes through here once, at the end of the request:
secrets are redacted first, then events leave through a bounded queue and a background thread,
so reporting can neither leak credentials nor slow or break the request.
"""

from bastion.report.eventlog import EventLog
from bastion.report.obfuscation import (
    DEFAULT_KEY_PATTERN,
    DEFAULT_VALUE_PATTERN,
    REDACTED,
    Obfuscator,
)

__all__ = [
    "DEFAULT_KEY_PATTERN",
    "DEFAULT_VALUE_PATTERN",
    "REDACTED",
    "EventLog",
    "Obfuscator",
]
