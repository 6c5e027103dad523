"""`goodhart evaluate-rm`: score saved reward models (one RM or an ensemble) on held-out pairs.

Reads top to bottom: 1 held-out preference pairs (toy: two samples of the policy per prompt,
labelled by gold; or the user's file), 2 score every member and compare with gold (pairwise
accuracy with gold ties excluded, rank correlation with gold on the policy samples, reward-length
Pearson r, a proxy-vs-gold scatter plot), 3 write each member's score mean/std into its saved
config (for later normalization), 4 for an ensemble: the aggregated scores' accuracy and the
members' disagreement on policy samples vs filler-stuffed and over-long variants (toy).
`goodhart train-rm` calls the same functions on each member it trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from goodhartlab.analysis.correlation import pairwise_agreement, pearson, spearman
from goodhartlab.analysis.plots import scatter
from goodhartlab.config.schemas import EvaluateRMConfig, GenerationConfig
from goodhartlab.core.ensemble import aggregate, ensemble_std
from goodhartlab.core.preference import preference_accuracy
from goodhartlab.data.formats import Preference
from goodhartlab.data.importers import PairKeys, import_preferences
from goodhartlab.data.records import write_jsonl_atomic
from goodhartlab.errors import input_error
from goodhartlab.models import load_policy
from goodhartlab.models.reward import (
    ensemble_members,
    load_reward_model,
    score_members,
    score_texts,
    write_score_stats,
)
from goodhartlab.recipes.toy_inputs import resolve_source
from goodhartlab.rollout.sampling import sample_texts
from goodhartlab.runs import RunDir
from goodhartlab.runs.seeding import DISAGREEMENT_VARIANTS, derive_seed
from goodhartlab.toyworld import perturb
from goodhartlab.toyworld.preferences import label_pairs
from goodhartlab.toyworld.teacher import sample_prompts


@dataclass
class PairSet:
    """Pairs plus, for toy data, gold scores of both sides (for accuracy against gold); for a
    file, how it was read (`data.importers`: format, rows skipped, gold ties dropped)."""

    pairs: list[Preference]
    gold_chosen: np.ndarray | None = None
    gold_rejected: np.ndarray | None = None
    read: dict[str, Any] | None = None


def sample_policy_pairs(
    policy: Any,
    tok: Any,
    n: int,
    rng: np.random.Generator,
    *,
    seed: int,
    gen: GenerationConfig,
    template: str | None,
    label_temperature: float,
    flip_prob: float,
) -> tuple[PairSet, list[dict]]:
    """Two samples of `policy` for each of n toy prompts, labelled by gold (BT sampling + flips).

    Returns the pairs and their JSONL rows (with gold scores and the flip flag).
    """

    prompts = [p.text for p in sample_prompts(n, rng)]
    twice = [p for p in prompts for _ in range(2)]
    texts = sample_texts(
        policy, tok, twice, max_new_tokens=gen.max_new_tokens, temperature=gen.temperature,
        top_k=gen.top_k, top_p=gen.top_p, batch_size=gen.batch_size, seed=seed, template=template,
    )  # fmt: skip
    # A response cut at the token limit has no eos; label_pairs scores responses as ended, so
    # such pairs (rare after SFT) are dropped rather than mislabelled. Pairs with an empty
    # response (eos first; ~2 in 10^4) are dropped too: preference files refuse empty texts.
    ok = [all(t.ended and t.response for t in texts[2 * i : 2 * i + 2]) for i in range(n)]
    a = [texts[2 * i].response for i in range(n) if ok[i]]
    b = [texts[2 * i + 1].response for i in range(n) if ok[i]]
    kept = [p for p, k in zip(prompts, ok) if k]
    labelled = label_pairs(kept, a, b, rng, label_temperature, flip_prob)
    pairs = PairSet(
        [Preference(p.prompt, p.chosen, p.rejected) for p in labelled],
        np.array([p.gold_chosen for p in labelled]),
        np.array([p.gold_rejected for p in labelled]),
    )
    return pairs, [vars(p) for p in labelled]


def read_pair_file(path: str | Path, data: Any) -> PairSet:
    """A preference file (or dataset) as a PairSet, read by `data.format` with `data`'s keys."""
    keys = PairKeys(data.prompt_key, data.chosen_key, data.rejected_key)
    got = import_preferences(path, data.format, keys, skip_invalid=data.skip_invalid)
    read = {"format": got.format, "n_pairs": len(got.pairs), "skipped_rows": got.skipped}
    if got.ties:
        read["gold_ties_dropped"] = got.ties
    return PairSet(got.pairs, got.gold_chosen, got.gold_rejected, read)


def evaluate_member(
    model: Any, tok: Any, pairs: PairSet, template: str | None, plot: str | Path | None
) -> dict:
    """Accuracy (against gold when known), rank/length correlations, score mean/std, scatter."""
    return score_report(_scores(model, tok, pairs, template), tok, pairs, plot)


def score_report(scores: np.ndarray, tok: Any, pairs: PairSet, plot: str | Path | None) -> dict:
    """The evaluation figures of scores (2N,) = chosen then rejected sides of N pairs."""

    n = len(pairs.pairs)
    responses = [p.chosen for p in pairs.pairs] + [p.rejected for p in pairs.pairs]
    lengths = np.array([len(tok(r, add_special_tokens=False)["input_ids"]) for r in responses])
    result = {
        "n_pairs": n,
        "score_mean": float(scores.mean()),
        "score_std": float(scores.std()),
        "reward_length_pearson": pearson(scores, lengths),
        "accuracy_vs_labels": float(
            preference_accuracy(torch.from_numpy(scores[:n]), torch.from_numpy(scores[n:]))
            .double()
            .mean()
        ),
    }
    if pairs.gold_chosen is not None and pairs.gold_rejected is not None:
        gold = np.concatenate([pairs.gold_chosen, pairs.gold_rejected])
        acc, kept = pairwise_agreement(scores[:n] - scores[n:], gold[:n] - gold[n:])
        result |= {"accuracy_vs_gold": acc, "n_untied_pairs": kept}
        result["rank_corr_gold"] = spearman(scores, gold)
        result["gold_length_pearson"] = pearson(gold, lengths)
        if plot is not None:
            scatter(plot, gold, scores, "gold", "proxy (RM score)",
                    "RM score vs gold on policy samples")  # fmt: skip
    return result


def ensemble_disagreement(members: list, pairs: PairSet, template: str | None) -> dict:
    """Mean std across members on policy samples and on off-distribution variants (toy).

    `ensemble_std/*` is the raw std of member scores (ddof 0, no normalization, as in the
    seeds); `ensemble_zstd/*` first standardizes each member by its mean/std on the policy
    samples, so members with a larger score scale do not dominate.
    """

    rng = np.random.default_rng(DISAGREEMENT_VARIANTS)
    prompts = [p.prompt for p in pairs.pairs]
    base = [p.chosen for p in pairs.pairs]
    variants = {
        "policy_samples": base,
        "filler_stuffed": [perturb.stuff_fillers(r) for r in base],
        "filler_spread": [perturb.spread_fillers(r) for r in base],
        "over_long": [perturb.overlong(p, r, rng) for p, r in zip(prompts, base)],
        "repeated_item": [perturb.repeat_item(p, r) for p, r in zip(prompts, base)],
    }
    out, ref = {}, None
    for name, responses in variants.items():
        scores = np.stack(score_members(members, prompts, responses, template=template))
        if ref is None:
            ref = scores.mean(axis=1, keepdims=True), scores.std(axis=1, keepdims=True)
        out[f"ensemble_std/{name}"] = float(ensemble_std(scores, ddof=0).mean())
        z = (scores - ref[0]) / np.maximum(ref[1], 1e-12)
        out[f"ensemble_zstd/{name}"] = float(ensemble_std(z, ddof=0).mean())
    return out


def load_eval_pairs(cfg: EvaluateRMConfig, run: RunDir) -> PairSet:
    """Step 1: toy pairs sampled from the policy (seeded), or the user's preference file."""
    data = cfg.data
    if data.eval != "toy":
        return read_pair_file(data.eval, data)

    policy, tok = load_policy(resolve_source(data.policy, data.toy.seed), device=cfg.device)
    rng = np.random.default_rng(derive_seed(data.toy.seed, "evaluate_rm/toy_labels"))
    pairs, rows = sample_policy_pairs(
        policy, tok, data.n_eval_pairs, rng, gen=data.generation,
        seed=derive_seed(data.toy.seed, "evaluate_rm/toy_generation"),
        template=data.template, label_temperature=data.label_temperature, flip_prob=0.0,
    )  # fmt: skip
    write_jsonl_atomic(run.file("prefs_eval.jsonl"), rows)
    return pairs


def run(cfg: EvaluateRMConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole recipe; writes RUN/rm_eval.json and one scatter plot per member."""

    if not cfg.rm:
        raise input_error("no reward model given: set rm=DIR (an RM dir or an ensemble run dir)")
    # step 1. the held-out pairs (toy: sampled and labelled by gold; or the user's file)
    pairs = load_eval_pairs(cfg, run_dir)
    # step 2. score them with every member: accuracy, correlations, a scatter plot each
    members, report, all_scores = [], {"members": {}}, []
    if pairs.read:  # a file's format and the rows skipped
        report["data"] = pairs.read
    for path in ensemble_members(cfg.rm):
        model, tok = load_reward_model(str(path), device=cfg.device)
        model.eval()
        name = path.parent.name if path.name == "model" else path.name
        scores = _scores(model, tok, pairs, cfg.data.template)
        result = score_report(scores, tok, pairs, run_dir.file(f"proxy_vs_gold_{name}.png"))
        if cfg.write_score_stats:  # step 3. the score mean/std PPO normalizes with
            write_score_stats(path, result["score_mean"], result["score_std"])
        report["members"][name] = result | {"path": str(path)}
        members.append((model, tok))
        all_scores.append(scores)
    # step 4. the ensemble's combined scores and the members' disagreement
    if len(members) > 1:
        stacked = np.stack(all_scores)
        combined = aggregate(stacked, cfg.ensemble.method, cfg.ensemble.uwo_coef,
                             cfg.ensemble.ddof)  # fmt: skip
        report["ensemble"] = {"method": cfg.ensemble.method} | score_report(
            combined, members[0][1], pairs, run_dir.file("proxy_vs_gold_ensemble.png")
        )
        if pairs.gold_chosen is not None:
            report["ensemble"] |= ensemble_disagreement(members, pairs, cfg.data.template)
    run_dir.write_json("rm_eval.json", report)
    print_report(report)
    return report


def _scores(model: Any, tok: Any, pairs: PairSet, template: str | None) -> np.ndarray:

    prompts = [p.prompt for p in pairs.pairs] * 2
    responses = [p.chosen for p in pairs.pairs] + [p.rejected for p in pairs.pairs]
    return score_texts(model, tok, prompts, responses, template=template)


def print_report(report: dict) -> None:
    """One table row per member (and the ensemble), then the disagreement figures."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="reward models (held-out)")
    cols = ("accuracy_vs_gold", "accuracy_vs_labels", "rank_corr_gold", "reward_length_pearson",
            "score_std")  # fmt: skip
    for col in ("member", *cols):
        table.add_column(col)
    rows = list(report["members"].items())
    if "accuracy_vs_labels" in report.get("ensemble", {}):
        rows.append((f"ensemble ({report['ensemble']['method']})", report["ensemble"]))
    for name, res in rows:
        table.add_row(str(name), *[f"{res.get(c, float('nan')):.3f}" for c in cols])
    Console().print(table)
    for key, value in report.get("ensemble", {}).items():
        if key.startswith(("ensemble_std/", "ensemble_zstd/")):
            print(f"{key}: {value:.4f}")
