"""`goodhart bon`: best-of-n curves of proxy and gold for single RMs and ensemble objectives.

Reads top to bottom: 1 scored generations (sample N answers per prompt from a policy and score
gold, or load a file: ours, with its proxy scores, or the seeds' `gold_labelled_gens` layout),
2 proxy scores of every RM member (scored once, stored in RUN/scored_generations.jsonl and reused
by later runs that point `generations` at it), 3 the unbiased best-of-n curve per member and
per ensemble objective (mean, WCO, UWO per λ; gold reordered with the ensemble's ranking, unlike
the seed), 4 result files in the seeds' layout, a summary table and plots.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from goodhartlab.analysis.fits import fit_bon_results
from goodhartlab.analysis.plots import GoldCurve, overoptimization
from goodhartlab.analysis.plots import curves as plot_curves
from goodhartlab.config.bon_schema import BonConfig
from goodhartlab.config.seed_paths import expand_seeds
from goodhartlab.core.best_of_n import bon_curve, bon_curve_ensemble
from goodhartlab.data.encoding import SharedEncodings
from goodhartlab.data.formats import load_prompts
from goodhartlab.errors import ConfigError, input_error
from goodhartlab.models import load_policy, load_tokenizer
from goodhartlab.recipes.bon_scored import SCORED_FILE, Scored, load_scored, save_scored
from goodhartlab.recipes.rm_members import member_names, resolve_members, score_member
from goodhartlab.recipes.toy_inputs import resolve_source
from goodhartlab.rollout.sampling import sample_texts
from goodhartlab.rollout.vllm_backend import check_available, sample_vllm
from goodhartlab.runs import RunDir
from goodhartlab.runs.progress import progress_bar
from goodhartlab.runs.seeding import derive_seed
from goodhartlab.toyworld import gold_reward
from goodhartlab.toyworld.teacher import sample_prompts

if TYPE_CHECKING:
    from goodhartlab.data.encoding import SharedEncodings

RESULTS_FILE = "bon_sampled_results.json"


def sample_generations(cfg: BonConfig) -> Scored:
    """Step 1 (sampling): N answers per prompt from the policy, with eos flags."""

    g = cfg.generate
    if g.prompts == "toy":
        rng = np.random.default_rng(derive_seed(cfg.seed, "bon/toy_prompts"))
        prompts = [p.text for p in sample_prompts(g.n_prompts, rng)]
    else:
        prompts = load_prompts(g.prompts)[: g.n_prompts]  # chat prompts stay messages
    if g.backend == "vllm":  # the policy loads in vLLM's engine, not here
        source = resolve_source(g.policy)
        answers, ended = sample_vllm(source, load_tokenizer(source), prompts, g.n_samples,
                                     g.sampling, cfg.seed, g.template)  # fmt: skip
        return Scored(prompts, answers, ended)
    policy, tok = load_policy(resolve_source(g.policy), device=cfg.device)
    policy.eval()
    repeated = [p for p in prompts for _ in range(g.n_samples)]
    s = g.sampling
    with progress_bar("bon: sampling", len(repeated)) as advance:
        texts = sample_texts(
            policy, tok, repeated, max_new_tokens=s.max_new_tokens, temperature=s.temperature,
            top_k=s.top_k, top_p=s.top_p, batch_size=s.batch_size, seed=cfg.seed,
            template=g.template, progress=advance,
        )  # fmt: skip
    n = g.n_samples
    answers = [[t.response for t in texts[i * n : (i + 1) * n]] for i in range(len(prompts))]
    ended = np.array([[t.ended for t in texts[i * n : (i + 1) * n]] for i in range(len(prompts))])
    return Scored(prompts, answers, ended)


def score_gold(cfg: BonConfig, scored: Scored, from_file: bool) -> None:
    """Step 1 (gold): the toy gold program, the file's gold scores, or a gold RM."""

    gold = cfg.gold if cfg.gold != "auto" else ("file" if from_file else "toy")
    if gold == "file":
        if scored.gold is None:
            raise input_error("gold=file needs a generations file with gold_scores", "gold")
        return
    flat_prompts, flat_answers, shape = scored.flat()
    if gold == "toy":
        ends = None if scored.ended is None else scored.ended.reshape(-1).tolist()
        try:
            values = gold_reward(flat_prompts, flat_answers, ends)
        except ValueError as exc:
            raise input_error(f"toy gold cannot score these generations ({exc})", "gold") from exc
        scored.gold = np.asarray(values, dtype=np.float64).reshape(shape)
        return

    encodings = SharedEncodings(flat_prompts, flat_answers, cfg.reward_template)
    ((_, values),) = _score_members(cfg, [Path(gold)], encodings, "bon: gold")
    scored.gold = values.reshape(shape)


def _score_members(
    cfg: BonConfig, members: list[Path], encodings: SharedEncodings, what: str
) -> Iterator[tuple[Path, np.ndarray]]:
    """(member, scores (N,)) one member at a time, so the caller can save after each; the texts
    are tokenized once per distinct tokenizer (`encodings`), not once per member."""

    with progress_bar(what, len(members)) as advance:
        for member in members:
            values, _ = score_member(member, encodings, cfg.device, cfg.score_batch_size)
            advance(1, info=member.name)
            yield member, values


def check_config(cfg: BonConfig) -> None:
    """Checks that need only the config (also run by `goodhart validate bon`): the seed paths,
    and vLLM asked for where it cannot run (one line)."""
    expand_seeds(cfg.reward_models, cfg.seeds, "reward_models")
    n = cfg.generate.n_samples
    if cfg.generations is None and cfg.big_n is not None and cfg.big_n > n:
        raise ConfigError(
            f"field 'big_n': {cfg.big_n} is more than generate.n_samples={n} answers to sample"
        )
    if cfg.generations is None:
        check_available(cfg.generate.backend)


def first_answers(scored: Scored, big_n: int | None) -> Scored:
    """The first big_n answers of every prompt (generation order, so estimates stay unbiased),
    with their scores; the seeds' --big-n. Fewer than big_n answers is an error."""
    n = len(scored.answers[0])
    if big_n is None or big_n == n:
        return scored
    if big_n > n:
        raise input_error(f"big_n={big_n} but there are {n} answers per prompt", "big_n")
    return Scored(
        scored.prompts,
        [row[:big_n] for row in scored.answers],
        None if scored.ended is None else scored.ended[:, :big_n],
        None if scored.gold is None else scored.gold[:, :big_n],
        {k: v[:, :big_n] for k, v in scored.proxy.items()},
    )


def score_proxies(cfg: BonConfig, run: RunDir, scored: Scored, members: list[Path]) -> None:
    """Step 2: score with each member not already in `scored.proxy`; save after each member.
    The answers are tokenized once and shared by every member with the same tokenizer."""

    flat_prompts, flat_answers, shape = scored.flat()
    todo = [m for m in members if str(m) not in scored.proxy]
    if len(todo) < len(members):
        print(f"bon: reusing stored proxy scores of {len(members) - len(todo)} member(s)")
    encodings = SharedEncodings(flat_prompts, flat_answers, cfg.reward_template)  # lazy
    for member, values in _score_members(cfg, todo, encodings, "bon: proxy"):
        scored.proxy[str(member)] = values.reshape(shape)
        save_scored(run, scored)


def curve_rows(curve: Any) -> list[dict[str, float]]:
    """The seeds' result layout, plus kl_bon."""
    return [
        {"n": int(n), "kl_bon": float(k), "proxy_score": float(p), "gold_score": float(g)}
        for n, k, p, g in zip(curve.n, curve.kl_bon, curve.proxy, curve.gold)
    ]


def compute_curves(cfg: BonConfig, scored: Scored, members: list[Path]) -> dict[str, list[dict]]:
    """Step 3: one curve per member and, with >= 2 members, per ensemble objective."""

    assert scored.gold is not None
    curves: dict[str, list[dict]] = {}
    stacked = np.stack([scored.proxy[str(m)] for m in members])
    for name, proxy in zip(member_names(members), stacked):
        curves[f"single/{name}"] = curve_rows(bon_curve(proxy, scored.gold, cfg.sample_ns))
    if len(members) < 2:
        return curves
    for method in cfg.objectives:
        for coef in cfg.uwo_coefs if method == "uwo" else [None]:
            curve = bon_curve_ensemble(
                stacked,
                scored.gold,
                cfg.sample_ns,
                method,
                uwo_coef=coef if coef is not None else 0.5,
                ddof=cfg.ddof,
                faithful_seed_gold=cfg.faithful_seed_gold,
            )
            label = method if coef is None else f"{method}_{coef:g}"
            curves[f"ensemble/{label}"] = curve_rows(curve)
    return curves


def summarize(curves: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """Peak gold, the n where it peaks, gold/proxy at the largest n, and the fitted Gao et al.
    best-of-n curve (d* and peak with intervals, `analysis.fits`), per curve."""

    out = {}
    for name, rows in curves.items():
        best = max(rows, key=lambda r: r["gold_score"])
        out[name] = {
            "peak_n": best["n"],
            "peak_gold": best["gold_score"],
            "final_n": rows[-1]["n"],
            "final_gold": rows[-1]["gold_score"],
            "final_proxy": rows[-1]["proxy_score"],
            "gold_n1": rows[0]["gold_score"],
            "fit": fit_bon_results(rows),
        }
    return out


def write_outputs(
    run: RunDir, curves: dict[str, list[dict]], fits: dict[str, dict[str, Any]]
) -> None:
    """Step 4: RUN/<single|ensemble>/<name>/bon_sampled_results.json and the plots (one with
    the fitted curves and their predicted peaks)."""

    for name, rows in curves.items():
        run.write_json(f"{name}/{RESULTS_FILE}", rows)
    first = next(iter(curves.values()))
    ns = [r["n"] for r in first]
    kls = [r["kl_bon"] for r in first]
    for score, label in (("gold_score", "gold"), ("proxy_score", "proxy")):
        series = {name: [r[score] for r in rows] for name, rows in curves.items()}
        plot_curves(run.file(f"bon_{label}_vs_n.png"), ns, series, "n", label,
                    f"best-of-n: {label} vs n", logx=True)  # fmt: skip
        plot_curves(run.file(f"bon_{label}_vs_kl.png"), kls, series, "KL_bon = log n - (n-1)/n",
                    label, f"best-of-n: {label} vs KL")  # fmt: skip
    fitted = [
        GoldCurve(name.split("/", 1)[1], [r["kl_bon"] for r in rows],
                  [r["gold_score"] for r in rows], [r["proxy_score"] for r in rows], fits[name])
        for name, rows in curves.items()
    ]  # fmt: skip
    overoptimization(run.file("bon_gold_proxy_vs_kl_fit.png"), fitted, "KL_bon = log n - (n-1)/n",
                     "best-of-n: gold, proxy and Gao fits", kl_axis=True)  # fmt: skip


def print_table(curves: dict[str, list[dict]]) -> None:
    """Two tables (gold, then proxy) with one column per curve: readable at 8+ curves."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    names = list(curves)
    for score, label in (("gold_score", "gold"), ("proxy_score", "proxy")):
        table = Table(title=f"best-of-n (unbiased estimator): {label}")
        table.add_column("n", justify="right")
        for name in names:
            table.add_column(name.split("/", 1)[1].removeprefix("rm_"), justify="right")
        for i, row in enumerate(next(iter(curves.values()))):
            table.add_row(str(row["n"]), *(f"{curves[k][i][score]:.3f}" for k in names))
        console.print(table)


def worth_keeping(cfg: BonConfig, run_dir: RunDir) -> bool:
    """Whether a failed fresh run keeps its dir: yes once it has drawn its own samples (minutes of
    generation that `--resume` reuses); a copy of the user's `generations` file is not worth it."""
    return cfg.generations is None and run_dir.file(SCORED_FILE).exists()


def run(cfg: BonConfig, run_dir: RunDir, resume: bool = False) -> dict:
    """The whole recipe; returns the summary also written to RUN/bon_summary.json."""
    check_config(cfg)
    # step 1. the scored generations: a resumed run keeps its own, else a given file, else sample
    stored = run_dir.file(SCORED_FILE)
    members = resolve_members(cfg.reward_models, cfg.seeds)  # bad RM paths fail before sampling
    if resume and stored.exists():
        scored, from_file = load_scored(stored), True
    elif cfg.generations is not None:
        scored, from_file = load_scored(cfg.generations), True
    else:
        scored, from_file = sample_generations(cfg), False
    scored = first_answers(scored, cfg.big_n)
    if scored.gold is None or cfg.gold not in ("auto", "file"):
        score_gold(cfg, scored, from_file)
    save_scored(run_dir, scored)
    # step 2. every RM member's proxy scores (stored with the generations, so scored once)
    score_proxies(cfg, run_dir, scored, members)
    # step 3. the unbiased best-of-n curve per member and per ensemble objective
    curves = compute_curves(cfg, scored, members)
    per_curve = summarize(curves)
    # step 4. result files in the seeds' layout, the table, the summary
    write_outputs(run_dir, curves, {name: c["fit"] for name, c in per_curve.items()})
    print_table(curves)
    summary = {
        "n_prompts": len(scored.prompts),
        "n_samples": len(scored.answers[0]),
        "members": [str(m) for m in members],
        "curves": per_curve,
    }
    run_dir.write_json("bon_summary.json", summary)
    return summary
