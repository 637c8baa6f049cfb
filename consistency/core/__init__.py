"""The checker's pure core: no I/O, no Kafka, Redis, boto3 or Feast imports.

- ``staleness``: heartbeat arithmetic on primary-clock readings only.
- ``digest``: per-entry hashes, bucket digests and their comparison (mirrors ``digest.lua``).
- ``classify``: missing / extra / behind-but-in-flight / behind / conflicting.
- ``stats``: Wilson score interval for sampled ratios.
- ``bounds``: bound evaluation with hysteresis and per-(region, measure) alert state.
- ``backoff``: retry delays for the webhook.
- ``versions``: registry and model versions live per region, and their skew.
- ``report``: the report's value objects and their JSON form.
- ``scope``: what the topology says the checker looks at (regions, topics, groups).
- ``lag``: consumer lag, catch-up time and retention headroom from offsets and rates.
- ``region``: one region's staleness and lag report from the round's readings.
- ``evaluate``: values against bounds (one-shot violations, observations for hysteresis).
"""
