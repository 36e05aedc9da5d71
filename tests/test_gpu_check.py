"""scripts/gpu-check.sh cannot rot quietly: it parses, and every option it passes to a
benchmark exists in that benchmark's argparse (the CI also dry-runs it: DEVICE=cpu)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def _flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


@pytest.mark.parametrize(
    "bench", sorted(set(re.findall(r"\$B/(bench_\w+\.py)", SCRIPT.read_text())))
)
def test_benchmark_options_exist(bench):
    text = SCRIPT.read_text()
    lines = [ln for ln in text.splitlines() if f"$B/{bench}" in ln]
    used = set().union(*(_flags(ln) for ln in lines))
    arrays = {
        "FIT": "bench_fit.py",
        "ENS": "bench_ensemble.py",
        "RBM": "bench_rbm.py",
        "DC": "bench_dropconnect.py",
    }
    for name, target in arrays.items():  # the size arrays, on cuda and cpu alike
        if target == bench:
            for m in re.finditer(rf"{name}=\(([^)]*)\)", text):
                used |= _flags(m.group(1))
    helptext = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / bench), "--help"],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},  # this checkout's code
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT / "benchmarks",
    ).stdout
    missing = sorted(used - _flags(helptext))
    assert not missing, f"gpu-check.sh passes {missing} to {bench}, which has no such option"
