"""The local stack: Kafka, S3Proxy and one Redis per region, run without Docker.

``LocalStack(topology).up()`` is what ``replicator stack up`` and the test fixtures call.
The import is lazy: ``replicator.cli`` registers ``stack`` for every command, and the other
commands should not pay for importing boto3 and confluent_kafka here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from replicator.stack.local import LocalStack, UpResult

__all__ = ["LocalStack", "UpResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from replicator.stack import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
