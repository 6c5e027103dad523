"""InfoRM: the information-bottleneck term of the reward model (spec inform_length.md §A.2, §A.3).

The RM encodes each sequence's final hidden state into a Gaussian latent N(μ, diag exp(logvar)),
samples z with the reparameterisation trick, and decodes z to the reward. The bottleneck term is the
KL from that Gaussian to N(0, I). Two modes, because the paper and the seed code disagree:
- `standard_sum`: the textbook KL, summed over the d latent dimensions (the paper's bound).
- `mean_pooled`: the seed code: average μ and logvar over the d dimensions first, then the 1-D
  KL of those two scalars to N(0, 1). Much weaker: μ_j may be large as long as their mean is ≈ 0.
"""

from __future__ import annotations

from typing import Literal

import torch

KLMode = Literal["standard_sum", "mean_pooled"]
KL_MODES: tuple[str, ...] = ("standard_sum", "mean_pooled")


def _gaussian_kl_terms(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (1.0 + logvar - mu**2 - torch.exp(logvar))


def gaussian_kl(
    mu: torch.Tensor, logvar: torch.Tensor, mode: KLMode = "standard_sum"
) -> torch.Tensor:
    """KL(N(μ, diag e^logvar) ‖ N(0, I)) per sample, in the chosen mode.

    standard_sum: −½ Σ_j (1 + logvar_j − μ_j² − e^{logvar_j}).
    mean_pooled:  m = mean_j μ_j, ℓ = mean_j logvar_j, then −½(1 + ℓ − m² − e^ℓ) (seed code).

    Why: the compression term of the variational IB bound; it pushes latents of all responses
    towards one shared prior so only preference-relevant information survives.

    Shape: mu, logvar (N, d) -> (N,)
    """
    if mode == "standard_sum":
        return _gaussian_kl_terms(mu, logvar).sum(dim=-1)
    if mode == "mean_pooled":
        return _gaussian_kl_terms(mu.mean(dim=-1), logvar.mean(dim=-1))
    raise ValueError(f"kl mode must be one of {KL_MODES}, got {mode!r}")


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = μ + exp(logvar/2)·ε with ε ~ N(0, I) drawn from `generator`.

    Why: a sample whose gradient flows to μ and logvar. At evaluation the seed uses z = μ.

    Shape: mu, logvar (*S, d) -> (*S, d)
    """
    noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * noise


def inform_loss(bt: torch.Tensor, kl: torch.Tensor, beta: float) -> torch.Tensor:
    """mean(bt) + β·mean(kl): the InfoRM training objective as a scalar.

    `bt` holds one preference loss per pair (N,); `kl` one term per sequence, chosen and
    rejected together (2N,). Averaging the KL over all 2N sequences is what the seed does; it is
    half of the paper's per-pair sum KL_c + KL_r, i.e. the paper's β is twice the code's.

    Shape: bt (N,), kl (2N,) -> ()
    """
    return bt.mean() + beta * kl.mean()
