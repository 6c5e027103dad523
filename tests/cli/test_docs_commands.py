"""Every `goodhart CMD key=value ...` line in README.md and docs/ is a config the CLI accepts.

Why: docs are where users copy commands from, and a renamed knob or a field whose type changed
breaks them silently (`goodhart orpo reward_fun=true` did, after a refactor made the field a
plain str that read `true` as a YAML bool). Each line is checked with `goodhart validate`, in
process; lines with placeholders (RUN, DIR, FILE, ...) and the commands with short forms of their
own (score, evaluate, report) are left out.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from goodhartlab.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDERS = ("RUN", "DIR", "FILE", "...", "<", "R/", "R1", "DEMO", "/path")
SHORT_FORMS = {"score", "evaluate", "evaluate-latents", "evaluate-rm", "report", "validate"}
# needs what this machine lacks: the reason must be the one in the validate error
NEEDS_GPU_STACK = "vLLM is not installed"


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(page, line, validate args) for every checkable command line."""
    found = []
    for page in PAGES:
        text = re.sub(r"\\\n\s*", " ", page.read_text(encoding="utf-8"))  # join continuations
        for raw in text.splitlines():
            match = re.match(r"^(?:\$ )?goodhart ([a-z-]+)(\s.*)?$", raw.strip())
            if not match or match.group(1) not in COMMANDS or match.group(1) in SHORT_FORMS:
                continue
            try:
                words = shlex.split((match.group(2) or "").split(" #")[0])
            except ValueError:
                continue
            if "--help" in words or any(p in w for w in words for p in PLACEHOLDERS):
                continue
            args, skip = [], False
            for word in words:
                if skip or word in ("--resume",):
                    skip = False
                    continue
                if word == "--out":
                    skip = True
                    continue
                args.append(word)
            found.append((page.name, raw.strip(), [match.group(1), *args]))
    return found


COMMAND_LINES = documented_commands()


def test_the_docs_have_commands_to_check() -> None:
    assert len(COMMAND_LINES) >= 40, len(COMMAND_LINES)


@pytest.mark.parametrize(("page", "line", "args"), COMMAND_LINES, ids=lambda v: str(v)[:60])
def test_documented_command_is_valid(page, line, args, capsys) -> None:
    code = main(["validate", *args])
    err = capsys.readouterr().err.strip()
    if code != 0 and NEEDS_GPU_STACK in err:
        pytest.skip(f"{page}: needs a GPU stack: {err}")
    assert code == 0, f"{page}: `{line}` -> {err}"
