"""Durations and sizes in the unit that fits them: one rule for the CLI and the page."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import pytest

from consistency.core.units import duration, size, usd
from consistency.status_page import render

CASES = {
    0.0: "0 s",
    0.2: "200 ms",
    4.5: "4.5 s",
    119.9: "119.9 s",
    1200.0: "20.0 min",
    83_604.0: "23.2 h",
    259_200.0: "3.0 d",
}


@pytest.mark.parametrize(("seconds", "shown"), CASES.items())
def test_durations_use_the_unit_that_fits(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_absent_and_unmeasurable_durations_say_so() -> None:
    assert duration(None) == "n/a"
    assert duration(math.nan) == "n/a"
    assert duration(math.inf) == "unmeasurable"


def test_sizes_use_binary_units() -> None:
    assert [size(n) for n in (512, 1536, 12_000_000, 5 * 1024**3)] == [
        "512 B",
        "1.5 KiB",
        "11.4 MiB",
        "5.0 GiB",
    ]
    assert size(None) == "n/a"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_the_status_page_formats_durations_with_the_same_rule() -> None:
    page = render({"project": "p", "regions": {}}, [])
    units = re.search(r'id="units" type="application/json">(.*?)</script>', page, re.S)
    script = re.search(r"(function scaled.*?\nfunction secs.*?\n})", page, re.S)
    assert units and script
    values = [*CASES, None, "unmeasurable"]
    program = (
        f"const UNITS = {units.group(1)};\n{script.group(1)}\n"
        f"console.log(JSON.stringify({json.dumps(values)}.map(secs)));"
    )
    done = subprocess.run(["node", "-e", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    expected = [*CASES.values(), "n/a", "unmeasurable"]
    assert json.loads(done.stdout) == expected


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_the_status_page_formats_sizes_and_money_with_the_same_rule() -> None:
    page = render({"project": "p", "regions": {}}, [])
    units = re.search(r'id="units" type="application/json">(.*?)</script>', page, re.S)
    scaled = re.search(r"(function scaled.*?\n})", page, re.S)
    helpers = re.search(r"(function size.*?\n}\n.*?const usd = .*?;\n)", page, re.S)
    assert units and scaled and helpers
    sizes = [512, 1536, 12_000_000, 5 * 1024**3]
    amounts = [0.0123, 0.5, 1234.5, 14.6]
    program = (
        f"const UNITS = {units.group(1)};\n{scaled.group(1)}\n{helpers.group(1)}\n"
        f"console.log(JSON.stringify([{json.dumps(sizes)}.map(size), "
        f"{json.dumps(amounts)}.map(usd)]));"
    )
    done = subprocess.run(["node", "-e", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[size(n) for n in sizes], [usd(a) for a in amounts]]
