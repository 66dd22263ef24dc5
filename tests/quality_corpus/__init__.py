"""The labelled corpus for bot/quality.py: loading it and scoring a check on it.

tune.yaml is what the checks were tuned on; holdout.yaml was written before tuning and kept
out of it. Each group has a `check` ("blame" or "action"), a `label`, a `source` (the guide
or kind of post-mortem its sentences are modelled on), the `people` a workspace would know,
and its sentences. Used by tests/test_quality_corpus.py and bench/quality.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.postmortem_content import ActionItemDraft, PostmortemContent
from bot.quality import review

HERE = Path(__file__).resolve().parent
SPLITS = ("tune", "holdout")
POSITIVE = {"blame": "blame", "action": "vague"}
NEGATIVE = {"blame": "blameless", "action": "specific"}


@dataclass(frozen=True)
class Example:
    check: str  # "blame" or "action"
    label: str  # blame | blameless, vague | specific
    text: str
    people: tuple[str, ...]
    source: str
    split: str

    @property
    def positive(self) -> bool:
        return self.label == POSITIVE[self.check]


def load(splits: Iterable[str] = SPLITS) -> list[Example]:
    examples = []
    for split in splits:
        for group in yaml.safe_load((HERE / f"{split}.yaml").read_text()):
            check, label = group["check"], group["label"]
            assert label in (POSITIVE[check], NEGATIVE[check]), group
            assert group.get("source"), group
            for text in group["sentences"]:
                examples.append(Example(check, label, text, tuple(group.get("people") or ()), group["source"], split))
    return examples


def flagged_by_bot(example: Example) -> bool:
    """Whether bot/quality.py warns: a blame.* warning on the sentence written in a field,
    an action.vague warning on the action item."""
    if example.check == "blame":
        warnings = review(PostmortemContent(went_wrong=example.text), example.people)
        return any(w.code.startswith("blame.") for w in warnings)
    content = PostmortemContent(action_items=[ActionItemDraft(key="n1", title=example.text)])
    return any(w.code == "action.vague" for w in review(content, example.people))


def any_action_warning(example: Example) -> bool:
    """Whether any warning at all lands on the action item (what an author sees)."""
    content = PostmortemContent(action_items=[ActionItemDraft(key="n1", title=example.text)])
    return any(w.field == "action_item:n1" for w in review(content, example.people))


@dataclass(frozen=True)
class Score:
    positives: int
    negatives: int
    hits: int  # positives flagged
    false_alarms: int  # negatives flagged

    @property
    def recall(self) -> float:
        return self.hits / self.positives if self.positives else 1.0

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.negatives if self.negatives else 0.0

    @property
    def precision(self) -> float:
        flagged = self.hits + self.false_alarms
        return self.hits / flagged if flagged else 1.0


def score(examples: Iterable[Example], flagged: Callable[[Example], bool]) -> tuple[Score, list[Example]]:
    """The score of `flagged` on `examples`, and the examples it gets wrong."""
    positives = negatives = hits = false_alarms = 0
    wrong = []
    for example in examples:
        said = flagged(example)
        if example.positive:
            positives += 1
            hits += said
        else:
            negatives += 1
            false_alarms += said
        if said != example.positive:
            wrong.append(example)
    return Score(positives, negatives, hits, false_alarms), wrong
