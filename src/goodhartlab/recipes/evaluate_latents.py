"""`goodhart evaluate latents --checkpoint A --checkpoint B ... --rm INFORM`: InfoRM's after-the-
fact hacking check (specs/inform_length.md §A.8) as one command.

Reads top to bottom: 1 load the InfoRM, 2 sample one answer per held-out prompt from the SFT
policy and from each checkpoint (same prompts, same seed), 3 encode every answer to its InfoRM
latent (μ at eos), 4 fit a Gaussian to the SFT latents and count each checkpoint's outliers
(Mahalanobis p-value < alpha, analysis/detect.py), 5 embed all latents in 2-D (t-SNE when
scikit-learn is installed, else PCA) and plot SFT vs each checkpoint with outliers marked:
RUN/latents.png, RUN/latent_outliers.json. The seed's version was a shell script and a picture
to look at; the outlier rate makes it a number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from goodhartlab.analysis import detect
from goodhartlab.analysis.detect import pca_2d
from goodhartlab.config.detect_schema import EvaluateLatentsConfig
from goodhartlab.config.ppo_schema import PPORewardConfig
from goodhartlab.errors import ConfigError
from goodhartlab.models import freeze, load_policy
from goodhartlab.models.inform import InfoRM, is_inform_dir
from goodhartlab.models.reward import ensemble_members, load_reward_model, score_texts
from goodhartlab.recipes.ppo_eval import eval_prompts, evaluate_policy
from goodhartlab.recipes.ppo_reward import RewardModels
from goodhartlab.recipes.toy_inputs import resolve_source
from goodhartlab.runs import RunDir


def load_inform(source: str, device: str) -> tuple[Any, Any]:
    """Step 1: the InfoRM itself, or the first InfoRM member of a train-rm run / manifest."""

    if not source:
        raise ConfigError("goodhart evaluate latents needs --rm INFORM (an InfoRM dir or run)")
    paths = [Path(source)] if is_inform_dir(source) else ensemble_members(source)
    for path in paths:
        if is_inform_dir(str(path)):
            model, tok = load_reward_model(str(path), device=device)
            assert isinstance(model, InfoRM)
            return model.eval(), tok
    raise ConfigError(f"field 'rm': no InfoRM in {source}")


def answers(cfg: EvaluateLatentsConfig, source: str, prompts: list[str]) -> Any:
    """Step 2: one seeded answer per prompt (the same sampler `goodhart ppo` evaluates with)."""

    policy, tok = load_policy(resolve_source(source), device=cfg.device)
    freeze(policy)
    return evaluate_policy(policy, None, tok, PPORewardConfig(kind="gold"),
                           RewardModels([], [], "toy"), prompts, cfg.generation, cfg.seed,
                           cfg.template)  # fmt: skip


def embed(latents: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, str]:
    """Step 5: 2-D coordinates, min-max scaled per axis as in the seed's plot."""

    use_tsne = method == "tsne"
    if method == "auto":
        import importlib.util

        use_tsne = importlib.util.find_spec("sklearn") is not None
    if use_tsne:
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, init="pca", random_state=seed).fit_transform(latents)
    else:
        xy = pca_2d(latents)
    span = np.maximum(xy.max(0) - xy.min(0), 1e-12)
    return (xy - xy.min(0)) / span, "t-SNE" if use_tsne else "PCA"


def plot(path: Path, xy_sft: np.ndarray, panels: list[tuple[str, np.ndarray, np.ndarray, float]],
         method: str) -> None:  # fmt: skip
    """One panel per checkpoint: SFT (blue) vs the checkpoint (red), outliers as black x."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (name, xy, outlier, rate) in zip(axes[0], panels):
        ax.scatter(*xy_sft.T, s=8, c="#1f77b4", alpha=0.5, label="SFT")
        ax.scatter(*xy[~outlier].T, s=8, c="#d62728", alpha=0.5, label="policy")
        ax.scatter(*xy[outlier].T, s=18, c="black", marker="x", label="policy outlier")
        ax.set_title(f"{name}\noutliers {rate:.0%}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(f"InfoRM latents ({method}): SFT vs RLHF samples", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(cfg: EvaluateLatentsConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole command; returns what RUN/latent_outliers.json holds."""

    if not cfg.checkpoints:
        raise ConfigError("goodhart evaluate latents needs --checkpoint DIR (one or more)")
    # step 1. the InfoRM whose latents are tested, and the held-out prompts
    model, tok = load_inform(cfg.rm, cfg.device)
    prompts = eval_prompts(cfg.prompts, cfg.n_prompts)

    # step 2. a policy's answers to the prompts, and their InfoRM latents
    def latents_of(source: str) -> tuple[np.ndarray, Any]:
        ev = answers(cfg, source, prompts)
        texts = [r["answers"][0] for r in ev.rows]
        return score_texts(model, tok, prompts, texts, return_latents=True)[1], ev

    # step 3. a Gaussian fitted to the SFT policy's latents; each checkpoint's outlier rate
    sft, _ = latents_of(cfg.sft)
    gaussian = detect.fit_gaussian(sft)
    results, clouds = {"sft": cfg.sft, "alpha": cfg.alpha, "checkpoints": {}}, []
    predictive = cfg.predictive and gaussian.n > gaussian.dim + 1  # else too few for F
    results["p_values"] = "F (estimated covariance)" if predictive else "chi-squared"
    sft_rate = detect.outlier_rate(sft, gaussian, cfg.alpha, predictive)
    results["sft_in_sample_outlier_rate"] = sft_rate
    for source in dict.fromkeys(cfg.checkpoints):  # a repeated dir once
        lat, ev = latents_of(source)
        pvalues = detect.outlier_pvalues(lat, gaussian, predictive)
        clouds.append((source, lat, pvalues < cfg.alpha))
        results["checkpoints"][source] = {
            "outlier_rate": float(np.mean(pvalues < cfg.alpha)),
            "gold": ev.metrics["reward/gold"],
            "length": ev.metrics["length/mean"],
            "eos_rate": ev.metrics["eos_rate"],
        }
    # step 4. a 2-D embedding of all latents, the plot and the results file
    xy, method = embed(np.vstack([sft, *(c[1] for c in clouds)]), cfg.embedding, cfg.seed)
    parts = np.split(xy, np.cumsum([len(sft), *(len(c[1]) for c in clouds)])[:-1])
    panels = [(_label(s), p, out, results["checkpoints"][s]["outlier_rate"])
              for (s, _, out), p in zip(clouds, parts[1:])]  # fmt: skip
    plot(run_dir.file("latents.png"), parts[0], panels, method)
    results["embedding"] = method
    run_dir.write_json("latent_outliers.json", results)
    for source, r in results["checkpoints"].items():
        print(f"evaluate latents: {source}: outliers {r['outlier_rate']:.1%} gold {r['gold']:.2f}")
    return results


def _label(source: str) -> str:
    parts = Path(source).parts
    return "/".join(parts[-3:]) if len(parts) > 3 else source
