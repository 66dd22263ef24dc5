"""Benchmark: how well the quality checks judge the labelled corpus (tests/quality_corpus/).

    .venv/bin/python bench/quality.py [--baseline REV]

Prints precision, recall and false-alarm rate per check, on the whole corpus and on the
held-out part (written before tuning, never tuned on), for bot/quality.py as it is and for
a baseline measured in the same run: bot/quality.py as of git revision REV (default
5233f49, the checks before issue 12), read with `git show`. Counts, not time.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.postmortem_content import ActionItemDraft, PostmortemContent  # noqa: E402
from tests.quality_corpus import Example, any_action_warning, flagged_by_bot, load, score  # noqa: E402

BASELINE_REV = "5233f49"


def baseline_module(rev: str) -> ModuleType | None:
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:bot/quality.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(no baseline: cannot read bot/quality.py at {rev}: {exc})")
        return None
    path = Path(tempfile.mkdtemp()) / "quality_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("quality_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def baseline_checks(module: ModuleType) -> dict[str, Callable[[Example], bool]]:
    def blame(example: Example) -> bool:
        warnings = module.review(PostmortemContent(went_wrong=example.text), example.people)
        return any(w.code == "blame" for w in warnings)

    def row(example: Example) -> list[str]:
        content = PostmortemContent(action_items=[ActionItemDraft(key="n1", title=example.text)])
        return [w.code for w in module.review(content, example.people) if w.field == "action_item:n1"]

    return {
        "blame": blame,
        "action (vague)": lambda e: "vague_action" in row(e),
        "action (any warning)": lambda e: bool(row(e)),
    }


CURRENT = {"blame": flagged_by_bot, "action (vague)": flagged_by_bot, "action (any warning)": any_action_warning}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision of the baseline (default: %(default)s)")
    args = parser.parse_args()
    old = baseline_module(args.baseline)
    checks = [("current", CURRENT)] + ([(f"baseline {args.baseline}", baseline_checks(old))] if old else [])
    print(f"{'split':<8} {'check':<22} {'checks':<17} {'n+/n-':>7} {'precision':>9} {'recall':>7} {'false alarms':>12}")
    for split, splits in (("all", ("tune", "holdout")), ("holdout", ("holdout",))):
        examples = load(splits)
        for check in ("blame", "action (vague)", "action (any warning)"):
            kind = check.split()[0]
            subset = [e for e in examples if e.check == kind]
            for name, flagged in checks:
                result, _ = score(subset, flagged[check])
                print(
                    f"{split:<8} {check:<22} {name:<17} {result.positives:>3}/{result.negatives:<3} "
                    f"{result.precision:>9.3f} {result.recall:>7.3f} {result.false_alarm_rate:>12.3f}"
                )


if __name__ == "__main__":
    main()
