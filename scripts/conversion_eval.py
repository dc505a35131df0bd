"""Score renames, conversions and ``remap`` on tiny transformers models' hub layouts.

Usage: python scripts/conversion_eval.py [-v] [MODEL_TYPE ...]   (-v lists every problem)
Builds each model type of tests/conversion_eval/models.py (torch and transformers needed),
saves it with ``save_pretrained``, and judges ckptdiff against ``from_pretrained``'s tensors.
Exit status 1 when a goal is missed (precision 0.99, recall 0.95, 90 % fixed by remap).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.conversion_eval.evaluate import score, totals  # noqa: E402
from tests.conversion_eval.models import MODEL_TYPES, build_case  # noqa: E402

GOALS = {"rename_precision": 0.99, "rename_recall": 0.95, "conversion_precision": 0.99,
         "conversion_recall": 0.95, "fixed": 0.90}


def main() -> int:
    """Build, score and print every case; the totals against the goals."""
    args = sys.argv[1:]
    verbose = "-v" in args
    names = [a for a in args if a != "-v"] or list(MODEL_TYPES)
    scores = []
    with tempfile.TemporaryDirectory(prefix="conversion_eval_") as tmp:
        for name in names:
            scores.append(score(build_case(name, Path(tmp)), Path(tmp)))
    width = max(len(s.name) for s in scores)
    print(f"{'case':<{width}}  renames (sugg/right/true)  conversions (sugg/right/true)  remap")
    for s in scores:
        renames = "/".join(map(str, s.renames))
        conversions = "/".join(map(str, s.conversions))
        flag = "" if not s.problems else "  <-"
        print(f"{s.name:<{width}}  {renames:>24}  {conversions:>29}  "
              f"{'fixed' if s.fixed else 'NOT fixed'}{flag}")
        if verbose:
            for problem in s.problems:
                print(f"    {problem}")
    figures = totals(scores)
    print(f"\n{len(scores)} model types: " + ", ".join(
        f"{k.replace('_', ' ')} {v:.4f} (goal {GOALS[k]})" for k, v in figures.items()))
    return 0 if all(figures[k] >= goal for k, goal in GOALS.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
