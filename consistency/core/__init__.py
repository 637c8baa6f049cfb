"""The checker's pure core: no I/O, no Kafka, Redis, boto3 or Feast imports.

- ``staleness``: heartbeat arithmetic on primary-clock readings only.
- ``digest``: per-entry hashes, bucket digests and their comparison (mirrors ``digest.lua``).
- ``classify``: missing / extra / behind-but-in-flight / behind / conflicting.
- ``stats``: Wilson score interval for sampled ratios.
- ``bounds``: bound evaluation with hysteresis and per-(region, measure) alert state.
- ``backoff``: retry delays for the webhook.
- ``versions``: registry and model versions live per region, and their skew.
- ``report``: the report's value objects and their JSON form.
"""
