"""docs/ops.md holds the op table exactly as jacobians.op_table.markdown() generates it from the registry.

When an op is added, renamed or changes its form or policy, these tests fail
until the table is regenerated:

    python tests/test_docs_ops.py          # rewrites the table between the markers in docs/ops.md

(``python -m jacobians.op_table`` prints the same table.)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # run as a script from a checkout: import this checkout's jacobians
    sys.path.insert(0, str(ROOT))

import jacobians as jx  # noqa: E402
from jacobians.op_table import markdown  # noqa: E402

DOC = ROOT / "docs" / "ops.md"
START, END = "<!-- op-table:start -->", "<!-- op-table:end -->"
REGENERATE = ("regenerate it: `python tests/test_docs_ops.py` (rewrites the table between the markers in "
              "docs/ops.md; `python -m jacobians.op_table` prints it)")


def _between(text):
    """The text strictly between the markers (the table, with the newline after START)."""
    assert text.count(START) == 1 and text.count(END) == 1, f"docs/ops.md needs one {START} and one {END}"
    i, j = text.index(START) + len(START), text.index(END)
    assert i <= j, f"docs/ops.md: {END} comes before {START}"
    return text[i:j]


def regenerate(path=DOC):
    """Write markdown() between the markers of docs/ops.md; return True when the file changed."""
    text = path.read_text(encoding="utf-8")
    new = text.replace(START + _between(text) + END, START + "\n" + markdown() + END)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def test_the_op_table_in_docs_ops_md_is_what_the_registry_generates():
    got, want = _between(DOC.read_text(encoding="utf-8")), "\n" + markdown()
    if got != want:
        old, new = set(got.strip().splitlines()), set(want.strip().splitlines())
        diff = [f"  - {r}" for r in sorted(old - new)][:5] + [f"  + {r}" for r in sorted(new - old)][:5]
        raise AssertionError("docs/ops.md: the op table differs from jacobians.op_table.markdown(); "
                             + REGENERATE + "\n" + "\n".join(diff))


def test_every_registered_op_has_a_row_in_docs_ops_md():
    text = DOC.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([^`]+)` \|", _between(text), flags=re.M))
    missing = [name for name in jx.registered_ops() if name not in rows]
    assert not missing, f"docs/ops.md has no row for the registered ops {missing}; " + REGENERATE
    stale = sorted(rows - set(jx.registered_ops()))
    assert not stale, f"docs/ops.md lists ops that are not registered: {stale}; " + REGENERATE


if __name__ == "__main__":
    print("docs/ops.md: table regenerated" if regenerate() else "docs/ops.md: table already up to date")
