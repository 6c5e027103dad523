"""Actor-critic MLP policies for the gym environments (ORPO's current and base policies).

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al.), not TRL's
odds-ratio preference optimization; see specs/orpo.md.

Why here: `models/` is the only place that loads and saves weights. A policy is a directory with
`model.safetensors` (weights) and `policy.json` (a `PolicySpec`), so a base policy trained by
`goodhart orpo algo=bc` (or a hacking checkpoint to regularize away from) loads with
`load_gym_policy(dir)` and nothing is unpickled.

Action families (specs/orpo.md §1.5, §2.4): `categorical` (logits), `gaussian` ([mean | log_std],
log_std a free parameter per action dim) and `beta` ([alpha | beta] = softplus(x) + 1, so both
are >= 1, on the box [low, high], as the seed's glucose policy). Actor and critic are separate
tanh MLPs (the seed's tomato net; glucose used a shared LSTM, replaced here by an MLP over the
flattened 4-hour history). Sampling takes an explicit `torch.Generator` so that the current and
the base policy draw from separate streams (a coefficient of 0 then equals plain PPO exactly).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

ActionFamily = Literal["categorical", "gaussian", "beta"]
SPEC_FILE = "policy.json"
WEIGHTS_FILE = "model.safetensors"
BETA_EDGE = 1e-6  # keep Beta samples / targets strictly inside (0, 1)
GAMMA_ROUNDS = 12  # Marsaglia-Tsang rounds; acceptance is > 95% per round for shape >= 1


@dataclass
class PolicySpec:
    """Everything needed to rebuild a policy: sizes, family, action box, hidden widths."""

    obs_dim: int
    action_dim: int  # number of actions (categorical) or action-vector size (continuous)
    family: ActionFamily = "categorical"
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    action_low: float = 0.0  # continuous families only
    action_high: float = 1.0
    init_log_std: float = -0.5  # gaussian only

    @property
    def dist_dim(self) -> int:
        return self.action_dim if self.family == "categorical" else 2 * self.action_dim


def _mlp(sizes: list[int], out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, out_gain if last else 2**0.5)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def sample_gamma(shape: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gamma(shape, 1) samples for shape >= 1 (Marsaglia-Tsang), drawn from `generator`.

    Why our own: torch's Gamma/Beta sampling ignores generators. Rows still rejected after
    GAMMA_ROUNDS rounds (probability < 1e-15) take the distribution's mode-like value d.

    Shape: shape (...) -> (...)
    """
    d = shape - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = d.clone()
    pending = torch.ones_like(shape, dtype=torch.bool)
    for _ in range(GAMMA_ROUNDS):
        x = torch.randn(shape.shape, generator=generator, device=shape.device, dtype=shape.dtype)
        u = torch.rand(shape.shape, generator=generator, device=shape.device, dtype=shape.dtype)
        v = (1.0 + c * x) ** 3
        log_v = torch.log(v.clamp(min=1e-30))
        accept = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * log_v) & pending
        out = torch.where(accept, d * v, out)
        pending = pending & ~accept
    return out


class GymPolicy(nn.Module):
    """Separate actor and critic MLPs; `dist_inputs` feeds `core.action_divergence`."""

    def __init__(self, spec: PolicySpec) -> None:
        super().__init__()
        self.spec = spec
        actor_out = spec.action_dim if spec.family == "gaussian" else spec.dist_dim
        self.actor = _mlp([spec.obs_dim, *spec.hidden, actor_out], out_gain=0.01)
        self.critic = _mlp([spec.obs_dim, *spec.hidden, 1], out_gain=1.0)
        if spec.family == "gaussian":
            self.log_std = nn.Parameter(torch.full((spec.action_dim,), spec.init_log_std))

    def dist_inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits, [mean | log_std] or [alpha | beta]. Shape: obs (B, obs_dim) -> (B, dist_dim)"""
        raw = self.actor(obs)
        if self.spec.family == "gaussian":
            return torch.cat([raw, self.log_std.expand_as(raw)], dim=1)
        if self.spec.family == "beta":
            return F.softplus(raw) + 1.0
        return raw

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """Shape: obs (B, obs_dim) -> (B,)"""
        return self.critic(obs).squeeze(-1)

    def _unit(self, actions: torch.Tensor) -> torch.Tensor:
        low, high = self.spec.action_low, self.spec.action_high
        return ((actions - low) / (high - low)).clamp(BETA_EDGE, 1.0 - BETA_EDGE)

    def log_prob_entropy(
        self, dist_inputs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-likelihood of `actions` and the entropy, summed over action dims.

        Beta densities are taken on the unit interval (the constant log(high - low) cancels in
        every ratio and gradient).

        Shape: dist_inputs (B, dist_dim), actions (B,) or (B, action_dim) -> (B,), (B,)
        """
        if self.spec.family == "categorical":
            dist = torch.distributions.Categorical(logits=dist_inputs)
            return dist.log_prob(actions.reshape(-1).long()), dist.entropy()
        logprobs, entropy = self.log_prob_entropy_per_dim(dist_inputs, actions)
        return logprobs.sum(-1), entropy.sum(-1)

    def log_prob_entropy_per_dim(
        self, dist_inputs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous families: log-likelihood and entropy of each action dim, unsummed (BC fits
        only the entries an env reads, `EnvInfo.bc_action_mask`).

        Shape: dist_inputs (B, dist_dim), actions (B, action_dim) -> (B, action_dim) twice
        """
        k = self.spec.action_dim
        if self.spec.family == "gaussian":
            dist = torch.distributions.Normal(dist_inputs[:, :k], dist_inputs[:, k:].exp())
            acts = actions.reshape(-1, k)
        elif self.spec.family == "beta":
            dist = torch.distributions.Beta(dist_inputs[:, :k], dist_inputs[:, k:])
            acts = self._unit(actions.reshape(-1, k))
        else:
            raise ValueError("per-dim log-probabilities need a continuous action family")
        return dist.log_prob(acts), dist.entropy()

    @torch.no_grad()
    def sample(
        self, dist_inputs: torch.Tensor, generator: torch.Generator | None, greedy: bool = False
    ) -> torch.Tensor:
        """Draw actions (env units) from `generator`.

        Shape: dist_inputs (B, dist_dim) -> (B,) int64 categorical, (B, action_dim) otherwise
        """
        family, k = self.spec.family, self.spec.action_dim
        if family == "categorical":
            if greedy:
                return dist_inputs.argmax(-1)
            probs = torch.softmax(dist_inputs, -1)
            return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        if family == "gaussian":
            mean, std = dist_inputs[:, :k], dist_inputs[:, k:].exp()
            noise = torch.randn(mean.shape, generator=generator, device=mean.device)
            return mean if greedy else mean + std * noise
        alpha, beta = dist_inputs[:, :k], dist_inputs[:, k:]
        if greedy:
            unit = alpha / (alpha + beta)
        else:
            x, y = sample_gamma(alpha, generator), sample_gamma(beta, generator)
            unit = x / (x + y)
        unit = unit.clamp(BETA_EDGE, 1.0 - BETA_EDGE)
        return self.spec.action_low + unit * (self.spec.action_high - self.spec.action_low)


def save_gym_policy(policy: GymPolicy, path: str | Path) -> Path:
    """Write `policy.json` + `model.safetensors` into directory `path` (created if needed)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
    save_file(state, str(path / WEIGHTS_FILE))
    (path / SPEC_FILE).write_text(json.dumps(asdict(policy.spec), indent=2))
    return path


def load_gym_policy(path: str | Path, device: torch.device | str | None = None) -> GymPolicy:
    """Rebuild a policy saved by `save_gym_policy`; a missing directory is an InputError."""
    from safetensors.torch import load_file

    from goodhartlab.errors import input_error

    path = Path(path)
    if not (path / SPEC_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise input_error(f"not a gym policy directory (need {SPEC_FILE}, {WEIGHTS_FILE})", path)
    spec = PolicySpec(**json.loads((path / SPEC_FILE).read_text()))
    policy = GymPolicy(spec)
    policy.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
    return policy.to(device) if device is not None else policy
