"""Print the rename engine's precision and recall over the evaluation set (tests/rename_eval).

Usage: python scripts/rename_eval.py [-v]   (-v lists wrong and missed pairs per case)
Exit status 1 when precision < 0.99 or recall < 0.95.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.rename_eval.evaluate import load_cases, score, totals  # noqa: E402

PRECISION_GOAL, RECALL_GOAL = 0.99, 0.95


def main() -> int:
    """Score every case; print a table and the totals."""
    verbose = "-v" in sys.argv[1:]
    scores = [score(case) for case in load_cases()]
    width = max(len(s.name) for s in scores)
    print(f"{'case':<{width}}  suggested  correct  expected  found")
    for s in scores:
        flag = "" if not s.wrong and not s.missed else "  <-"
        counts = f"{s.suggested:9}  {s.correct:7}  {s.expected:8}  {s.found:5}"
        print(f"{s.name:<{width}}  {counts}{flag}")
        if verbose:
            for pair in s.wrong:
                print(f"    wrong:  {pair[0]} -> {pair[1]}")
            for pair in s.missed:
                print(f"    missed: {pair[0]} -> {pair[1]}")
    precision, recall = totals(scores)
    print(f"\n{len(scores)} cases: precision {precision:.4f} (goal {PRECISION_GOAL}), "
          f"recall {recall:.4f} (goal {RECALL_GOAL})")
    return 0 if precision >= PRECISION_GOAL and recall >= RECALL_GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
