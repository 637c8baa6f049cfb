"""The CI subset of the fault-injection suite (docs/chaos.md): three faults, every invariant.

Runs on the suite's own stack (infra/chaos/topology.yaml: 3 Kafka brokers, Toxiproxy WAN),
started and stopped here, never the shared one. A failing cell fails the test with the whole
table in the message; the run's history is kept under chaos-runs/ to replay it.
"""

from __future__ import annotations

import random

import pytest

from chaos.cluster import toxiproxy_candidates
from chaos.nemesis import CI_SUBSET, by_name
from chaos.runner import RunResult, commit_id
from chaos.table import render
from chaos.toxiproxy import ToxiproxyError, find_server

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


@pytest.fixture(scope="module")
def results() -> list[RunResult]:
    from chaos.__main__ import run_matrix

    try:
        find_server(toxiproxy_candidates())
    except ToxiproxyError as exc:
        pytest.fail(str(exc))
    seed = random.SystemRandom().randrange(10**6)
    return run_matrix([by_name(name) for name in CI_SUBSET], seed, print)


@pytest.mark.parametrize("fault", CI_SUBSET)
def test_every_invariant_holds_through(fault: str, results: list[RunResult]) -> None:
    result = next(r for r in results if r.fault.name == fault)
    table = render(results, seed=result.seed, commit=commit_id(), command="pytest -m chaos")
    failing = {name: cell.figure for name, cell in result.cells.items() if cell.ok is False}
    assert not result.error, f"{fault}: {result.error}\n{table}"
    assert not failing, f"{fault}: {failing}\n{table}"
