"""InfoRM: a reward model with an information bottleneck on the final hidden state.

backbone (any HF `AutoModel`) -> hidden state at the last non-pad token h (H) ->
encode_head: Linear(H -> 2d, no bias) split into mu, logvar -> z = mu + exp(logvar/2)·eps in
training, z = mu in eval -> decode_head: Linear(d -> 1, no bias), or a SwiGLU MLP d -> 4d -> 1.
`mu` is the latent used for detecting hacked outputs (spec inform_length.md §A.2, §A.8).

Why only the last-token position goes through the heads: the reward and the KL term are read
there only, so computing the heads at every token (as the seed code does) changes nothing but cost.
Saved as: the backbone via save_pretrained, `inform_head.safetensors`, `inform_config.json`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from goodhartlab.core.bottleneck import reparameterize

INFORM_CONFIG = "inform_config.json"
INFORM_HEAD = "inform_head.safetensors"


@dataclass
class InfoRMConfig:
    latent_dim: int = 128
    decoder: Literal["linear", "swiglu"] = "linear"
    score_mean: float | None = None
    score_std: float | None = None


class SwiGLUDecoder(nn.Module):
    """down(silu(gate z) * up z): the seed's `use_complex_decoder` option."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(latent_dim, 4 * latent_dim, bias=False)
        self.up = nn.Linear(latent_dim, 4 * latent_dim, bias=False)
        self.down = nn.Linear(4 * latent_dim, 1, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.down(nn.functional.silu(self.gate(z)) * self.up(z))


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last position whose mask is 1 (works for left and right padding). Shape: (B,)."""
    width = attention_mask.shape[1]
    return width - 1 - attention_mask.long().flip(dims=[1]).argmax(dim=1)


class InfoRM(nn.Module):
    """Backbone + bottleneck heads; `forward` returns scores, mu and logvar at the last token."""

    def __init__(
        self, backbone: Any, config: InfoRMConfig, generator: torch.Generator | None = None
    ):
        super().__init__()
        self.backbone = backbone
        self.inform_config = config
        hidden = backbone.config.hidden_size
        self.encode_head = nn.Linear(hidden, 2 * config.latent_dim, bias=False)
        if config.decoder == "linear":
            self.decode_head: nn.Module = nn.Linear(config.latent_dim, 1, bias=False)
        else:
            self.decode_head = SwiGLUDecoder(config.latent_dim)
        for param in [*self.encode_head.parameters(), *self.decode_head.parameters()]:
            nn.init.normal_(param, std=0.02, generator=generator)
        self.noise_generator: torch.Generator | None = None

    @property
    def config(self) -> Any:
        return self.backbone.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(scores (B,), mu (B, d), logvar (B, d)); z is sampled only in training mode."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        h = hidden[rows, last_token_index(attention_mask)]
        mu, logvar = self.encode_head(h).chunk(2, dim=-1)
        z = reparameterize(mu, logvar, self.noise_generator) if self.training else mu
        return self.decode_head(z).squeeze(-1), mu, logvar

    def save(self, out_dir: Path) -> None:
        """Write backbone (save_pretrained), heads (safetensors) and the head config into out_dir."""
        from safetensors.torch import save_file

        self.backbone.save_pretrained(out_dir, safe_serialization=True)
        heads = {f"encode_head.{k}": v for k, v in self.encode_head.state_dict().items()}
        heads |= {f"decode_head.{k}": v for k, v in self.decode_head.state_dict().items()}
        save_file({k: v.contiguous().cpu() for k, v in heads.items()}, str(out_dir / INFORM_HEAD))
        (out_dir / INFORM_CONFIG).write_text(json.dumps(asdict(self.inform_config), indent=2))

    def save_pretrained(self, out_dir: str | Path, safe_serialization: bool = True) -> None:
        """HF-style alias so checkpoint code can treat InfoRM like any model (always safetensors)."""
        self.save(Path(out_dir))

    @classmethod
    def load(cls, path: Path, allow_pickle_weights: bool = False, **kwargs: Any) -> InfoRM:
        from safetensors.torch import load_file
        from transformers import AutoModel

        from goodhartlab.models.loading import weights_kwargs

        cfg = InfoRMConfig(**json.loads((path / INFORM_CONFIG).read_text()))
        kwargs.update(weights_kwargs(path, allow_pickle_weights))  # safetensors only by default
        model = cls(AutoModel.from_pretrained(path, **kwargs), cfg)
        heads = load_file(str(path / INFORM_HEAD))
        model.encode_head.load_state_dict(_strip(heads, "encode_head."))
        model.decode_head.load_state_dict(_strip(heads, "decode_head."))
        return model


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def is_inform_dir(path: str | Path) -> bool:
    return (Path(path) / INFORM_CONFIG).exists()
