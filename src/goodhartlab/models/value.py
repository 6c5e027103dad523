"""Value models for PPO: a separate token-level value network, or a head on the policy's trunk.

- "separate": `AutoModelForTokenClassification` with one label, started from the SFT policy's
  backbone (fresh head). It saves and loads with plain transformers, like every model of ours.
- "head": an MLP d → 2d → 1 (trlx's hydra value head) on the policy's last hidden states, saved
  as `value_head.safetensors`; cheaper (one trunk), but policy and value gradients then share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

VALUE_HEAD_FILE = "value_head.safetensors"


class ValueHead(nn.Module):
    """Shape: hidden (B, T, d) -> values (B, T)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden_size, 2 * hidden_size), nn.ReLU(), nn.Linear(2 * hidden_size, 1)
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden).squeeze(-1)


def load_value_model(
    source: str,
    *,
    device: Any,
    seed: int = 0,
    trust_remote_code: bool = False,
    allow_pickle_weights: bool = False,
) -> nn.Module:
    """A token classifier with one label on `source`'s backbone; the head is seeded by `seed`."""
    from transformers import AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    from goodhartlab.models.loading import _from_pretrained

    # The fresh head and the unused LM head are expected: silence transformers' load report.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _from_pretrained(
            AutoModelForTokenClassification,
            source,
            allow_pickle_weights,
            num_labels=1,
            trust_remote_code=trust_remote_code,
        )
    hf_logging.set_verbosity(verbosity)
    return model.to(device)


def make_value_head(hidden_size: int, *, device: Any, seed: int = 0) -> ValueHead:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = ValueHead(hidden_size)
    return head.to(device)


def save_value_head(head: ValueHead, out_dir: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(out_dir) / VALUE_HEAD_FILE
    save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}, str(path))
    return path


def load_value_head_weights(head: ValueHead, model_dir: str | Path) -> ValueHead:
    from safetensors.torch import load_file

    state = load_file(str(Path(model_dir) / VALUE_HEAD_FILE))
    head.load_state_dict({k: v.to(next(head.parameters()).device) for k, v in state.items()})
    return head
