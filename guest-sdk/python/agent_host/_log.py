"""Python's ``logging`` into the host's log (``log.log``), tagged with the job id.

The SDK installs :class:`HostLogHandler` on the root logger with level DEBUG
when a job starts, so ``logging.getLogger(__name__).info(...)`` reaches the
host, which filters by its own level (``RUST_LOG``).
"""

import logging

from wit_world.imports import log as _log

_LEVELS = [
    (logging.ERROR, _log.Level.ERROR),
    (logging.WARNING, _log.Level.WARN),
    (logging.INFO, _log.Level.INFO),
    (logging.DEBUG, _log.Level.DEBUG),
]


class HostLogHandler(logging.Handler):
    """A ``logging`` handler writing each record as one line of the job's log."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:  # a bad format string must not fail the job
            message = str(record.msg)
        level = next((wit for py, wit in _LEVELS if record.levelno >= py), _log.Level.TRACE)
        _log.log(level, message)


def install() -> None:
    """Routes the root logger to the host, once."""
    root = logging.getLogger()
    if not any(isinstance(h, HostLogHandler) for h in root.handlers):
        handler = HostLogHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
