"""Anthropic HH-RLHF rows: two full transcripts, split into a chat prompt and two responses.

A row is `{"chosen": T1, "rejected": T2}` where each T is `"\\n\\nHuman: ...\\n\\nAssistant: ..."`
and T1, T2 share every turn but the last assistant reply. The prompt is the shared transcript
up to and including its last `"\\n\\nAssistant:"` marker (TRL's `extract_anthropic_prompt` cut),
returned as chat messages (Human -> user, Assistant -> assistant) so that the tokenizer's chat
template renders it (`data.encoding.format_prompt`); a tokenizer without one gets the plain
`User: ... Assistant:` text. Why cut at the marker and not at the longest common prefix: two
replies that both begin "I think" would otherwise lose those words to the prompt.
"""

from __future__ import annotations

import re

from goodhartlab.data.formats import Message, Preference
from goodhartlab.data.records import Record

ASSISTANT = "\n\nAssistant:"
# a marker after a blank line, or at the very start (a stripped copy: "Human: ..." first)
_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def transcript_messages(text: str) -> list[Message]:
    """Turns of an HH transcript as messages; text before the first marker is dropped if blank.

    `"\\n\\nHuman: hi\\n\\nAssistant: hello"` -> [user "hi", assistant "hello"]. Contents are
    stripped of surrounding whitespace.
    """
    parts = _TURN.split(text)
    head, rest = parts[0], parts[1:]
    messages = [{"role": "user", "content": head.strip()}] if head.strip() else []
    for role, content in zip(rest[::2], rest[1::2]):
        messages.append({"role": _ROLES[role], "content": content.strip()})
    return messages


def split_transcripts(chosen: str, rejected: str) -> tuple[list[Message], str, str] | str:
    """(prompt messages, chosen reply, rejected reply), or the reason the row cannot be split."""
    if chosen == rejected:
        return "chosen and rejected are identical"
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    cut = chosen.rfind(ASSISTANT, 0, n)  # the last marker wholly inside the shared part
    if cut < 0:
        return "chosen and rejected share no '\\n\\nAssistant:' turn to split the prompt at"
    end = cut + len(ASSISTANT)
    prompt = transcript_messages(chosen[:cut])
    if not prompt or prompt[-1]["role"] != "user":
        return "the shared transcript does not end with a Human turn before the reply"
    return prompt, chosen[end:].strip(), rejected[end:].strip()


def hh_preference(
    rec: Record, chosen_key: str = "chosen", rejected_key: str = "rejected"
) -> Preference:
    """One HH row as a preference pair; a row that cannot be split is a row error."""
    chosen, rejected = rec.text(chosen_key), rec.text(rejected_key)
    result = split_transcripts(chosen, rejected)
    if isinstance(result, str):
        raise rec.error(result, chosen_key)
    prompt, chosen_reply, rejected_reply = result
    for key, reply in ((chosen_key, chosen_reply), (rejected_key, rejected_reply)):
        if not reply:
            raise rec.error("is an empty reply after the shared prompt", key)
    return Preference(prompt, chosen_reply, rejected_reply)


def looks_like_hh(text: object) -> bool:
    """Whether a chosen/rejected value is an HH transcript (for format detection)."""
    if not isinstance(text, str) or ASSISTANT not in text:
        return False
    return "\n\nHuman:" in text or text.startswith("Human:")
