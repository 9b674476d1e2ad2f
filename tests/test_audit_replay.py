"""The audit replay at its --quick size: every core attempt of the adversarial audit ends clean.

benchmarks/audit.py runs each attempt in its own subprocess; here it runs as a user
runs it, and its table's total row must show no traceback, no hang and no
allocation above the limit.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_audit_replay_is_clean():
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "audit.py"), "--quick", "--timeout", "30"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=170)
    total = re.search(r"^total\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", r.stdout, re.M)
    assert total, r.stdout + r.stderr
    attempts, clean, tracebacks, hangs, above, wrong = map(int, total.groups())
    assert attempts > 30
    assert (tracebacks, hangs, above) == (0, 0, 0), r.stdout
    assert r.returncode == 0 and clean == attempts and wrong == 0, r.stdout
