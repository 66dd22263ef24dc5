"""The layers hold: the bot never imports the Slack emulator (the demo aside), and the emulator
takes from the bot only its clock, plus what the harness needs to start a bot.

Read from the source (every import statement, function-level ones included), so a stray
import fails here rather than shipping the emulator inside the product.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DEMO = "bot/demo.py"
"""The one module of the product that plays against the emulator (`postmortem-bot demo`)."""

EMULATOR_MAY_IMPORT = {"bot.clock"}
"""What any emulator module may take from bot/ and storage/: the Clock it shares with the bot."""

HARNESS_MAY_IMPORT = EMULATOR_MAY_IMPORT | {"bot.app", "bot.config", "bot.views", "storage.models"}
"""The harness starts a real bot against the emulator and waits on its database."""


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in `path`: `import a.b` gives ("a.b", []),
    `from a import b, c` gives ("a", ["b", "c"]); b may be a module (`from bot import app`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def sources(package: str) -> list[Path]:
    found = sorted((ROOT / package).rglob("*.py"))
    assert found, f"no Python source under {package}/"
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def takes_from(module: str, names: list[str], allowed: set[str]) -> bool:
    """Whether an import takes only from `allowed` modules (`from bot import clock` does)."""
    if any(within(module, name) for name in allowed):
        return True
    return bool(names) and all(any(within(f"{module}.{n}", name) for name in allowed) for n in names)


def test_only_the_demo_imports_the_emulator() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for package in ("bot", "storage")
        for path in sources(package)
        if path.relative_to(ROOT).as_posix() != DEMO
        for line, module, _ in imports(path)
        if within(module, "slack_emulator")
    ]
    assert not offenders, "the bot never imports the emulator (bot/demo.py aside):\n" + "\n".join(offenders)


def test_the_demo_does_import_the_emulator() -> None:
    """Keeps the exception above honest: drop it from the test when the demo stops needing it."""
    assert any(within(module, "slack_emulator") for _, module, _ in imports(ROOT / DEMO))


def test_the_emulator_takes_only_the_clock_from_the_bot() -> None:
    offenders = []
    for path in sources("slack_emulator"):
        allowed = HARNESS_MAY_IMPORT if path.name == "harness.py" else EMULATOR_MAY_IMPORT
        for line, module, names in imports(path):
            if not (within(module, "bot") or within(module, "storage")):
                continue
            if not takes_from(module, names, allowed):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, (
        "slack_emulator may import bot.clock, and its harness what starts a bot "
        f"({sorted(HARNESS_MAY_IMPORT)}):\n" + "\n".join(offenders)
    )
