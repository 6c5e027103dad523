"""Invariants of the shared PPO update (DESIGN.md §7).

- An LLM-shaped batch (B, T, mask) and a gym-shaped batch (one valid token per row, T = 1) built
  from the same tensors give identical losses and identical parameters after the update.
- Split micro-batches with gradient accumulation give the whole minibatch's gradient.
- A regulariser with coefficient 0 is plain PPO; with coefficient > 0 it lowers the final KL.
"""

from __future__ import annotations

import pytest
import torch

from goodhartlab.core.advantages import gae
from goodhartlab.core.ppo import entropy_from_logits
from goodhartlab.core.regularize import place_terminal
from goodhartlab.rl.ppo_update import ForwardOut, PPOHyperparams, divergence_loss_fn, ppo_update

B, T, F, V = 6, 4, 3, 5
LENGTHS = torch.tensor([4, 2, 3, 1, 4, 2])


class TokenPolicy(torch.nn.Module):
    """Logits and value linear in per-token features; works for any (b, T, F) input."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(F, V, generator=g, dtype=torch.float64))
        self.v = torch.nn.Parameter(torch.randn(F, generator=g, dtype=torch.float64))

    def forward(self, minibatch: dict[str, torch.Tensor]) -> ForwardOut:
        logits = minibatch["features"] @ self.w
        logprobs = torch.log_softmax(logits, -1).gather(-1, minibatch["actions"][..., None])
        return ForwardOut(
            logprobs[..., 0], minibatch["features"] @ self.v, entropy_from_logits(logits)
        )


def llm_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(T)[None, :] < LENGTHS[:, None]
    dd = {"dtype": torch.float64}
    batch = {
        "features": torch.randn(B, T, F, generator=g, **dd),
        "actions": torch.randint(0, V, (B, T), generator=g),
        "old_values": torch.randn(B, T, generator=g, **dd),
        "advantages": torch.randn(B, T, generator=g, **dd),
        "returns": torch.randn(B, T, generator=g, **dd),
        "mask": mask,
    }
    with torch.no_grad():
        out = TokenPolicy(seed=1)(batch)
    noise = 0.3 * torch.randn(B, T, generator=g, **dd)
    batch["old_logprobs"] = out.logprobs + noise  # ratios != 1 so clipping is exercised
    batch["ref_logprobs"] = out.logprobs - noise
    padding = ~mask
    for key in ("old_values", "advantages", "returns", "old_logprobs"):
        batch[key] = batch[key].masked_fill(padding, 1e6)  # garbage in padding must not matter
    return batch


def gym_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same valid tokens as rows of one step each (T = 1)."""
    mask = batch["mask"]
    return {k: v[mask].unsqueeze(1) for k, v in batch.items() if k != "ref_logprobs"}


HP = PPOHyperparams(
    epochs=2, minibatch_size=1000, clip_eps=0.2, clip_eps_value=0.2, vf_coef=0.5,
    ent_coef=0.01, max_grad_norm=None, whiten_advantages=True,
)  # fmt: skip


def run(batch, hp, extra=None, seed=0, optimizer="sgd"):
    policy = TokenPolicy(seed=1)
    if optimizer == "sgd":
        opt = torch.optim.SGD(policy.parameters(), lr=1.0)
    else:
        opt = torch.optim.Adam(policy.parameters(), lr=0.05)
    metrics = ppo_update(batch, policy, opt, hp, torch.Generator().manual_seed(seed), extra)
    return policy, metrics


def test_llm_and_gym_shapes_give_identical_losses_and_updates() -> None:
    batch = llm_batch()
    llm_policy, llm_metrics = run(batch, HP)
    gym_policy, gym_metrics = run(gym_batch(batch), HP)
    assert set(llm_metrics) >= {"loss/policy", "loss/value", "loss/total", "ppo/clip_frac",
                                "ppo/approx_kl", "ppo/entropy", "ppo/grad_norm"}  # fmt: skip
    assert llm_metrics["ppo/clip_frac"] > 0
    for key, value in llm_metrics.items():
        assert gym_metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    torch.testing.assert_close(llm_policy.w, gym_policy.w, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(llm_policy.v, gym_policy.v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("divergence", [None, "kl", "chi2"])
def test_split_batches_with_accumulation_equal_the_whole_batch(divergence) -> None:
    batch = llm_batch(seed=2)
    extra = divergence_loss_fn(divergence, coef=0.3) if divergence else None
    hp = PPOHyperparams(**{**HP.__dict__, "epochs": 1, "max_grad_norm": 0.2})
    start = TokenPolicy(seed=1)
    whole, whole_metrics = run(batch, hp, extra)
    for steps in (2, 3, B):
        split, split_metrics = run(
            batch, PPOHyperparams(**{**hp.__dict__, "grad_accum_steps": steps}), extra
        )
        # SGD with lr 1: the parameter change is minus the (clipped) gradient
        torch.testing.assert_close(split.w - start.w, whole.w - start.w, rtol=0, atol=1e-6)
        torch.testing.assert_close(split.v - start.v, whole.v - start.v, rtol=0, atol=1e-6)
        assert split_metrics["loss/total"] == pytest.approx(whole_metrics["loss/total"], abs=1e-9)
    assert whole_metrics["ppo/grad_norm"] > 0.2  # the clip was active


@pytest.mark.parametrize("divergence", ["kl", "chi2", "sqrt_chi2"])
def test_coefficient_zero_equals_plain_ppo(divergence) -> None:
    batch = llm_batch(seed=3)
    hp = PPOHyperparams(**{**HP.__dict__, "epochs": 3, "minibatch_size": 2})
    plain, plain_metrics = run(batch, hp, None, optimizer="adam")
    zero, zero_metrics = run(batch, hp, divergence_loss_fn(divergence, 0.0), optimizer="adam")
    torch.testing.assert_close(zero.w, plain.w, rtol=0, atol=1e-12)
    torch.testing.assert_close(zero.v, plain.v, rtol=0, atol=1e-12)
    assert zero_metrics["loss/total"] == pytest.approx(plain_metrics["loss/total"], abs=1e-12)
    assert zero_metrics["regularizer/kl"] > 0


def test_batch_errors_are_reported() -> None:
    batch = llm_batch()
    del batch["advantages"]
    with pytest.raises(ValueError, match="missing"):
        run(batch, HP)
    batch = llm_batch()
    batch["returns"] = batch["returns"][:, :2]
    with pytest.raises(ValueError, match="returns"):
        run(batch, HP)
    with pytest.raises(ValueError, match="epochs"):
        PPOHyperparams(epochs=0)


class Tabular(torch.nn.Module):
    """Independent categorical per position: a 3-token 'language model'."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone())

    def forward(self, minibatch):
        logp = torch.log_softmax(self.logits, -1).expand(minibatch["actions"].shape[0], -1, -1)
        return ForwardOut(logp.gather(-1, minibatch["actions"][..., None])[..., 0])


def train_sequence_toy(coef: float, iterations: int = 30) -> float:
    """PPO on 3-token sequences rewarded for token 0; returns exact KL(π‖π_ref) at the end."""
    ref_logits = torch.zeros(3, 4, dtype=torch.float64)
    policy, reference = Tabular(ref_logits), Tabular(ref_logits)
    opt = torch.optim.Adam(policy.parameters(), lr=0.1)
    hp = PPOHyperparams(epochs=2, minibatch_size=32, clip_eps=0.2, vf_coef=0.0)
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(64, 3, dtype=torch.bool)
    ref_logp = torch.log_softmax(ref_logits, -1)
    extra = divergence_loss_fn("kl", coef) if coef else None
    for _ in range(iterations):
        with torch.no_grad():
            probs = torch.softmax(policy.logits, -1)
            actions = torch.multinomial(probs.repeat(64, 1), 1, generator=g).view(64, 3)
            batch = {"actions": actions, "mask": mask}
            old_logprobs = policy(batch).logprobs
            score = (actions == 0).to(torch.float64).sum(1)
            rewards = place_terminal(score - score.mean(), mask)
            adv = gae(rewards, torch.zeros_like(rewards), gamma=1.0, gae_lambda=1.0, mask=mask)
            ref_logprobs = reference(batch).logprobs
        batch.update(
            old_logprobs=old_logprobs, advantages=adv.advantages, ref_logprobs=ref_logprobs
        )
        ppo_update(batch, policy, opt, hp, g, extra)
    logp = torch.log_softmax(policy.logits.detach(), -1)
    return float((logp.exp() * (logp - ref_logp)).sum())


def test_a_regularizer_lowers_the_final_kl() -> None:
    free, regularised = train_sequence_toy(0.0), train_sequence_toy(1.0)
    assert free > 0.5  # the unregularised policy runs away from the reference
    assert regularised < 0.5 * free


def test_explained_variance_is_cleanrl_formula_on_valid_tokens() -> None:
    from goodhartlab.rl.ppo_update import explained_variance

    batch = llm_batch(seed=3)
    mask = batch["mask"]
    values, returns = batch["old_values"][mask], batch["returns"][mask]
    expected = 1.0 - torch.var(returns - values, unbiased=False) / torch.var(
        returns, unbiased=False
    )
    got = explained_variance(batch["old_values"], batch["returns"], mask)
    assert got == pytest.approx(float(expected), rel=1e-12)
    assert explained_variance(batch["returns"], batch["returns"], mask) == 1.0  # perfect values
    _, metrics = run(batch, HP)
    assert metrics["ppo/explained_variance"] == pytest.approx(float(expected), rel=1e-12)
    assert metrics["ppo/epochs"] == HP.epochs


def test_target_kl_stops_the_epochs_early_and_none_runs_them_all() -> None:
    batch = llm_batch(seed=4)
    many = PPOHyperparams(**{**HP.__dict__, "epochs": 6})
    _, full = run(batch, many, optimizer="adam")
    assert full["ppo/epochs"] == 6 and full["ppo/approx_kl"] > 0
    tiny = PPOHyperparams(**{**many.__dict__, "target_kl": 1e-12})
    policy, stopped = run(batch, tiny, optimizer="adam")
    assert stopped["ppo/epochs"] == 1  # the first epoch already moved the policy past 1e-12
    one_epoch, _ = run(batch, PPOHyperparams(**{**HP.__dict__, "epochs": 1}), optimizer="adam")
    torch.testing.assert_close(policy.w, one_epoch.w)  # stopped after exactly one epoch
    with pytest.raises(ValueError, match="target_kl"):
        PPOHyperparams(target_kl=0.0)
