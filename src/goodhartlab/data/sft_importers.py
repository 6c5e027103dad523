"""SFT demonstrations from the layouts real datasets come in, chosen by `data.format=` of `sft`.

Formats (`DEMONSTRATION_FORMATS`):
- `trl`: `prompt` + `completion` (text or conversational), or TRL's conversational `messages`
  (a list of `{role, content}` ending in an assistant turn: the turns before it are the prompt).
- `alpaca`: `instruction`, `input`, `output` (AlpacaFarm's `alpaca_instructions`, the seeds' SFT
  data); the prompt is the instruction plus `"\\n" + input` when the input is not empty.
- `hh`: Anthropic HH transcripts in `chosen`: every turn but the last assistant reply is the chat
  prompt, that reply the completion (SFT on the preferred answers, as the DPO paper does).
- `auto` (default): by the first row's columns, in the order above.
`prompt_key`/`completion_key` rename the TRL columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from goodhartlab.config.schemas import DemonstrationFormat
from goodhartlab.data.formats import (
    Demonstration,
    convert_rows,
    instruction_prompt,
    read_rows,
    response_text,
    text_or_messages,
    trl_demonstration,
)
from goodhartlab.data.hh import ASSISTANT, transcript_messages
from goodhartlab.data.records import Record

DEMONSTRATION_FORMATS: tuple[str, ...] = get_args(DemonstrationFormat)


def detect_demo_format(rec: Record, prompt_key: str, completion_key: str) -> str:
    """The layout of a demonstrations file from its first row's columns."""
    cols = rec.data
    if (prompt_key in cols and completion_key in cols) or "messages" in cols:
        return "trl"
    if "instruction" in cols and "output" in cols:
        return "alpaca"
    if "chosen" in cols:
        return "hh"
    raise rec.error(
        f"cannot tell the demonstrations format from the columns {sorted(cols)}: expected "
        f"{prompt_key!r}/{completion_key!r} or messages (trl), instruction/output (alpaca) or "
        f"chosen (hh); set data.format to one of {list(DEMONSTRATION_FORMATS[1:])}"
    )


def messages_demonstration(rec: Record) -> Demonstration:
    """TRL conversational `messages`: the last turn (an assistant's) is the completion."""
    messages = text_or_messages(rec, "messages")
    if isinstance(messages, str) or len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise rec.error("must be 2+ messages ending with an assistant turn", "messages")
    return Demonstration(messages[:-1], response_text(rec, "messages", messages[-1:]))


def hh_demonstration(rec: Record) -> Demonstration:
    """An HH `chosen` transcript: the turns before its last assistant reply, and that reply."""
    text = rec.text("chosen")
    cut = text.rfind(ASSISTANT)
    prompt = transcript_messages(text[:cut]) if cut >= 0 else []
    if not prompt or prompt[-1]["role"] != "user":
        raise rec.error("is not an HH transcript ending in '\\n\\nAssistant:' after a Human turn",
                        "chosen")  # fmt: skip
    reply = text[cut + len(ASSISTANT) :].strip()
    if not reply:
        raise rec.error("has an empty final reply", "chosen")
    return Demonstration(prompt, reply)


def import_demonstrations(
    path: str | Path,
    fmt: str = "auto",
    prompt_key: str = "prompt",
    completion_key: str = "completion",
    *,
    skip_invalid: bool = False,
) -> tuple[list[Demonstration], str, int]:
    """(demonstrations, the format read, rows skipped) of a file, dir or hub dataset."""
    read = read_rows(path, skip_invalid)
    first = read[0][0]
    fmt = detect_demo_format(first, prompt_key, completion_key) if fmt == "auto" else fmt

    def row(rec: Record) -> Demonstration:
        if fmt == "alpaca":
            return Demonstration(instruction_prompt(rec), rec.text("output"))
        if fmt == "hh":
            return hh_demonstration(rec)
        if prompt_key not in first.data and "messages" in first.data:
            return messages_demonstration(rec)
        return trl_demonstration(rec, prompt_key, completion_key)

    items, _, skipped = convert_rows(path, row, skip_invalid, read)
    return items, fmt, skipped
