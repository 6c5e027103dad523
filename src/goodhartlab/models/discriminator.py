"""ORPO's occupancy-measure discriminator: a small MLP on states or state-action pairs.

"ORPO" here is occupancy-measure regularized policy optimization (Laidlaw et al.), not TRL's
odds-ratio preference optimization. See specs/orpo.md §1.2 (network) and §1.1 step 3 (training).

Why a separate module: the discriminator is trained on the union of current-policy and base-policy
samples before each PPO update, then scores the current batch to build the per-step penalty
(`goodhartlab.core.occupancy.om_distance`). Its input is the flattened state (state OM,
`use_action_for_disc=False`) or the state with the action appended (state-action OM, the seed's
default): one-hot for discrete action spaces, the raw vector for continuous ones. Env-specific
state slicing (pandemic's last observation row, glucose's last CGM value) is the caller's job:
pass the sliced state as `obs`.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from goodhartlab.core.occupancy import (
    OmDivergence,
    balanced_mean,
    discriminator_loss,
    gradient_penalty,
)

DiscBatch = torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]


def save_discriminators(discs: list[nn.Module], path: str | Path) -> None:
    """All discriminators' weights in one safetensors file, keys prefixed "<index>."."""
    from safetensors.torch import save_file

    tensors = {
        f"{i}.{k}": v.detach().contiguous().cpu()
        for i, d in enumerate(discs)
        for k, v in d.state_dict().items()
    }
    save_file(tensors, str(path))


def load_discriminators(discs: list[nn.Module], path: str | Path) -> None:
    """Load `save_discriminators`' file into `discs` (same count and shapes), in place."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    for i, d in enumerate(discs):
        prefix = f"{i}."
        d.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})


class Discriminator(nn.Module):
    """MLP in -> [width] * depth -> 1, LeakyReLU (slope 0.01) after every hidden layer (§1.2).

    Args:
        state_dim: number of state features after flattening.
        action_dim: number of actions (discrete: one-hot width) or action-vector size (continuous).
        discrete_actions: one-hot encode integer actions when True; concatenate floats when False.
        use_action_for_disc: True = state-action OM (the seed's default), False = state OM.
        width, depth, negative_slope: the seed's defaults are 256, 2 and 0.01.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int = 0,
        discrete_actions: bool = True,
        use_action_for_disc: bool = True,
        width: int = 256,
        depth: int = 2,
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if use_action_for_disc and action_dim <= 0:
            raise ValueError("use_action_for_disc=True needs action_dim > 0")
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.discrete_actions = discrete_actions
        self.use_action_for_disc = use_action_for_disc
        self.in_dim = state_dim + (action_dim if use_action_for_disc else 0)
        dims = [self.in_dim] + [width] * depth
        layers: list[nn.Module] = []
        for d_in, d_out in pairwise(dims):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(negative_slope)]
        layers.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*layers)

    def encode(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """Discriminator input x = [flatten(s)] or [flatten(s), one_hot(a) | a] as float32.

        Shape: obs (B, *S), actions (B,) discrete or (B, *A) continuous -> (B, in_dim)
        """
        state = obs.reshape(obs.shape[0], -1).float()
        if state.shape[1] != self.state_dim:
            raise ValueError(f"expected {self.state_dim} state features, got {state.shape[1]}")
        if not self.use_action_for_disc:
            return state
        if actions is None:
            raise ValueError("this discriminator is state-action: pass actions")
        if self.discrete_actions:
            action_part = F.one_hot(actions.reshape(-1).long(), self.action_dim).float()
        else:
            action_part = actions.reshape(actions.shape[0], -1).float()
        return torch.cat([state, action_part], dim=1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Scores d(x) for encoded inputs. Shape: inputs (B, in_dim) -> (B,)"""
        return self.net(inputs).squeeze(-1)


def _inputs(disc: Discriminator, batch: DiscBatch) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch.float()
    obs, actions = batch
    return disc.encode(obs, actions)


@torch.no_grad()
def discriminator_scores(
    disc: Discriminator, batch: DiscBatch, chunk_size: int = 4096
) -> torch.Tensor:
    """Scores d(x) of a whole batch in chunks, without a graph (for the reward augmentation).

    Shape: batch (N, in_dim) or (obs (N, *S), actions) -> (N,)
    """
    inputs = _inputs(disc, batch)
    return torch.cat([disc(inputs[i : i + chunk_size]) for i in range(0, len(inputs), chunk_size)])


@torch.no_grad()
def clip_weights_(disc: nn.Module, bound: float) -> None:
    """Clamp every parameter to [-bound, bound]: the WGAN Lipschitz constraint (seed: 0.01)."""
    for param in disc.parameters():
        param.clamp_(-bound, bound)


def _minibatch_loss(
    disc: Discriminator,
    inputs: torch.Tensor,
    is_base: torch.Tensor,
    divergence: OmDivergence,
    grad_penalty_weight: float | None,
) -> torch.Tensor:
    use_gp = divergence == "wasserstein" and bool(grad_penalty_weight)
    if use_gp:
        inputs = inputs.detach().requires_grad_(True)
    scores = disc(inputs)
    per_sample = discriminator_loss(scores, is_base, divergence)
    if use_gp:
        per_sample = per_sample + grad_penalty_weight * gradient_penalty(scores, inputs)
    return balanced_mean(per_sample, is_base)


def train_discriminator(
    disc: Discriminator,
    optimizer: torch.optim.Optimizer,
    current_batch: DiscBatch,
    base_batch: DiscBatch,
    divergence: OmDivergence,
    steps: int,
    minibatch_size: int,
    generator: torch.Generator | None = None,
    grad_clip: float | None = None,
    grad_penalty_weight: float | None = None,
    weight_clip: float | None = None,
) -> dict[str, float]:
    """Train the discriminator on current (label False) vs base (label True) samples (§1.1 step 3).

    `steps` is the number of passes (epochs) over the shuffled union of both batches, as the
    seed's `discriminator_num_sgd_iter`; each pass runs ceil(N / minibatch_size) optimizer steps.
    Each minibatch loss is the balanced per-group mean of `core.occupancy.discriminator_loss`,
    plus `grad_penalty_weight` times the gradient penalty for wasserstein. `grad_clip` clips the
    global gradient norm (the seed's `grad_clip`). `weight_clip` clamps the weights after every
    step (standard WGAN); the seed instead clamps once per iteration *after* the rewards have been
    computed: to reproduce that, leave it None and call `clip_weights_` after the reward step.
    Batches are encoded inputs (N, in_dim) or (obs, actions) pairs. `generator` seeds shuffling
    (on the CPU; indices are moved to the data's device).

    Returns floats: loss (mean over the last pass's minibatches), current_score / base_score (mean
    d on each batch after training), accuracy (fraction classified right by sign(d)) and updates.
    """
    cur = _inputs(disc, current_batch)
    base = _inputs(disc, base_batch)
    inputs = torch.cat([cur, base])
    is_base = torch.cat(
        [torch.zeros(len(cur), dtype=torch.bool), torch.ones(len(base), dtype=torch.bool)]
    ).to(inputs.device)
    n = len(inputs)
    updates, last_losses = 0, []
    disc.train()
    for _ in range(steps):
        order = torch.randperm(n, generator=generator).to(inputs.device)
        last_losses = []
        for start in range(0, n, minibatch_size):
            idx = order[start : start + minibatch_size]
            loss = _minibatch_loss(disc, inputs[idx], is_base[idx], divergence, grad_penalty_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(disc.parameters(), grad_clip)
            optimizer.step()
            if weight_clip is not None:
                clip_weights_(disc, weight_clip)
            last_losses.append(loss.detach())
            updates += 1
    return _training_summary(disc, cur, base, last_losses, updates)


def _training_summary(
    disc: Discriminator,
    cur: torch.Tensor,
    base: torch.Tensor,
    last_losses: list[torch.Tensor],
    updates: int,
) -> dict[str, float]:
    """`train_discriminator`'s floats, from the trained discriminator's scores on both batches."""
    cur_scores = discriminator_scores(disc, cur)
    base_scores = discriminator_scores(disc, base)
    correct = (cur_scores > 0).sum() + (base_scores <= 0).sum()
    return {
        "loss": float(torch.stack(last_losses).mean()) if last_losses else float("nan"),
        "current_score": float(cur_scores.mean()),
        "base_score": float(base_scores.mean()),
        "accuracy": float(correct) / (len(cur) + len(base)),
        "updates": float(updates),
    }
