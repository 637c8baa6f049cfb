"""Logging set-up for the entry points: plain text for people, JSON lines for machines."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import sys
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields passed with ``extra=`` become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when the handler was
    made: an entry point called in-process (tests, the demo) may outlive a swapped stream."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure(*, json_lines: bool, verbose: bool = False) -> None:
    """Root logging for a command (one handler on stderr), and a crash report: a fatal signal
    in native code run by a Python thread (hiredis, a confluent-kafka call) prints every
    thread's Python stack to stderr before the process dies (``faulthandler``), so an operator
    sees where, not only ``SIGSEGV``. A crash in one of librdkafka's own threads cannot be
    reported so (they block every signal: the kernel ends the process without running the
    handler); RUNBOOK.md says how to read it from a core dump."""
    with contextlib.suppress(AttributeError, ValueError):  # a stderr without a descriptor
        faulthandler.enable()
    handler = _StderrHandler()
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "feast"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
