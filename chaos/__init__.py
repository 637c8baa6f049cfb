"""The fault-injection suite (``make chaos``, docs/chaos.md), Jepsen-style.

- ``workload``: calls the primary's Feast write path and records every call and its outcome
  in a ``history`` (values increase per entity);
- ``nemesis``: injects one fault on a schedule and heals it by itself after a bounded time;
- ``checkers``: judge the history and the observations afterwards (lost writes, identical
  regions, convergence, the consistency checker's alarms, dead letters);
- ``runner``: one run per fault on the suite's own stack (``cluster``: 3 Kafka brokers,
  a Toxiproxy WAN, ``infra/chaos/topology.yaml``), each run's history kept with its seed
  and commit; ``table`` writes docs/fault-table.md.
"""
