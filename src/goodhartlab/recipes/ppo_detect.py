"""Online hacking detection and early stopping for `goodhart ppo` (`detect.*`, `early_stop.*`).

At every evaluation `DetectMonitor.observe` scores the evaluation samples with the detectors of
analysis/detect.py against the step-0 evaluation (the SFT policy on the same held-out prompts,
saved in RUN/detect/reference.npz so a resumed run compares with the same samples) and returns
`detect/<name>/score` and `detect/<name>/flag` metrics. With `early_stop.on=NAME` it saves the
policy of every evaluation that detector does not flag to RUN/detect/last_unflagged (on disk, so
a resumed run still has it) and says stop once `patience` evaluations in a row are flagged; the
recipe then saves that policy as RUN/model. `summary_fields` are merged into ppo_summary.json.

Why a module of its own: ppo.py stays a top-to-bottom recipe; the detectors stay pure math.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from goodhartlab.analysis import detect
from goodhartlab.config.detect_schema import DETECTORS, DetectConfig, EarlyStopConfig
from goodhartlab.config.seed_paths import shared_seeds
from goodhartlab.errors import ConfigError
from goodhartlab.models import load_policy, save_model
from goodhartlab.models.inform import InfoRM
from goodhartlab.models.reward import load_reward_model, score_members, score_texts
from goodhartlab.recipes.ppo_reward import load_reward_models
from goodhartlab.runs import RunDir

ENSEMBLE_DETECTORS = ("disagreement", "disagreement_std", "wco")
LATENT_DETECTORS = ("latent", "csi")
REFERENCE_FILE = "detect/reference.npz"
KEPT_POLICY = "detect/last_unflagged"


@dataclass
class Signals:
    """What the detectors read from one evaluation.

    Shape: members (K, B) (K may be 0), latents (B, d) or None, lengths, ended (B,)
    """

    members: np.ndarray
    latents: np.ndarray | None
    lengths: np.ndarray
    ended: np.ndarray
    proxy: float | None


def why_unavailable(name: str, n_members: int, has_inform: bool) -> str | None:
    """None if the detector can run with these reward models, else what it needs."""
    if name in ENSEMBLE_DETECTORS and n_members < 2:
        return "needs an ensemble (detect.ensemble=[...] or several reward.reward_models)"
    if name in LATENT_DETECTORS and not has_inform:
        return "needs an InfoRM (detect.inform=DIR or an InfoRM proxy)"
    return None


def available_detectors(
    cfg: DetectConfig, n_members: int, has_inform: bool, stop_on: str | None = None
) -> list[str]:
    """The detectors to run: those asked for, or every one the reward models allow (ensemble
    ones need ≥ 2 members, latent ones an InfoRM). One asked for (or `stop_on`) that cannot
    run is a ConfigError saying what it needs."""

    for field_name, name in [*(("detect.detectors", n) for n in cfg.detectors),
                             ("early_stop.on", stop_on)]:  # fmt: skip
        if name is not None and (why := why_unavailable(name, n_members, has_inform)):
            raise ConfigError(f"field '{field_name}': {name} {why}")
    names = list(dict.fromkeys(cfg.detectors)) or [
        n for n in DETECTORS if why_unavailable(n, n_members, has_inform) is None
    ]
    if stop_on is not None and stop_on not in names:
        raise ConfigError(
            f"field 'early_stop.on': {stop_on} is not in detect.detectors ({', '.join(names)})"
        )
    return names


class DetectMonitor:
    """Detector state across evaluations: the reference signals, per-detector flag history, and
    the early-stop decision."""

    def __init__(self, cfg: DetectConfig, stop: EarlyStopConfig, run_dir: RunDir,
                 reward_template: str | None, ensemble: Any, inform: Any) -> None:  # fmt: skip
        self.cfg, self.stop, self.run_dir = cfg, stop, run_dir
        self.template, self.ensemble, self.inform = reward_template, ensemble, inform
        self.names: list[str] = []
        self.reference: Signals | None = None
        self.gaussian: detect.Gaussian | None = None
        self.scale = 1.0
        self.predictive = cfg.predictive
        self.steps: list[int] = []
        self.flags: dict[str, list[bool]] = {}
        self.proxy: list[float] = []
        self.wco: list[float] = []
        self.stopped_at: int | None = None
        self.kept_step: int | None = None

    # signals ---------------------------------------------------------------
    def signals(self, evaluation: Any) -> Signals:
        """Member scores (monitor ensemble or the proxy's members), InfoRM latents, lengths."""

        prompts = [r["instruction"] for r in evaluation.rows]
        texts = [r["answers"][0] for r in evaluation.rows]
        members = evaluation.scores.members
        if self.ensemble is not None:
            raw = score_members(self.ensemble.members, prompts, texts, template=self.template)
            members = np.stack([(r - m) / s for r, (m, s) in zip(raw, self.ensemble.member_stats)])
        latents = None
        if self.inform is not None:
            model, tok = self.inform
            latents = score_texts(model, tok, prompts, texts, template=self.template,
                                  return_latents=True)[1]  # fmt: skip
        proxy = evaluation.scores.proxy
        return Signals(np.asarray(members, dtype=np.float64), latents,
                       np.asarray(evaluation.lengths, dtype=np.float64),
                       np.asarray(evaluation.ended, dtype=bool),
                       None if proxy is None else float(np.mean(proxy)))  # fmt: skip

    def set_reference(self, ref: Signals) -> None:
        """Fit what the latent detectors need once, and save the reference for a resume."""
        self.reference = ref
        if ref.latents is not None:
            self.gaussian = detect.fit_gaussian(ref.latents)
            self.scale = max(detect.knn_scale(ref.latents, self.cfg.csi_min_samples), 1e-12)
            self.predictive = self.cfg.predictive and self.gaussian.n > self.gaussian.dim + 1
            if self.cfg.predictive and not self.predictive:  # a smoke run: warn, don't fail
                print(f"ppo: {self.gaussian.n} reference latents for {self.gaussian.dim} dims are "
                      "too few for F p-values; the latent detector uses chi-squared")  # fmt: skip

    def save_reference(self) -> None:
        """RUN/detect/reference.npz, written to a temp name and renamed (a killed run leaves
        no half-written file for the resume to trust)."""
        ref, path = self.reference, self.run_dir.file(REFERENCE_FILE)
        arrays = {"members": ref.members, "lengths": ref.lengths, "ended": ref.ended}
        if ref.latents is not None:
            arrays["latents"] = ref.latents
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    # scores ----------------------------------------------------------------
    def scores(self, sig: Signals) -> dict[str, float]:
        """Every active detector's score for one evaluation (history-aware for wco)."""
        ref, cfg, out = self.reference, self.cfg, {}
        for name in self.names:
            if name == "disagreement":
                out[name] = detect.disagreement_ratio(sig.members, ref.members)
            elif name == "disagreement_std":
                out[name] = detect.disagreement_ratio(sig.members, ref.members, standardized=True)
            elif name == "latent":
                out[name] = detect.outlier_rate(sig.latents, self.gaussian, cfg.alpha,
                                                self.predictive)  # fmt: skip
            elif name == "csi":
                out[name] = (
                    detect.cluster_separation_index(
                        sig.latents, ref.latents, cfg.csi_eps * self.scale, cfg.csi_min_samples
                    )
                    / self.scale
                )
            elif name == "length":
                out[name] = detect.length_drift(sig.lengths, ref.lengths)
            elif name == "eos":
                out[name] = detect.eos_drop(sig.ended, ref.ended)
            elif name == "wco":
                out[name] = detect.wco_divergence(self.proxy, self.wco)
        return out

    def observe(self, step: int, evaluation: Any, policy: Any, tokenizer: Any) -> dict[str, Any]:
        """Score one evaluation; keep the policy while `early_stop.on` does not flag."""
        sig = self.signals(evaluation)
        if self.reference is None:
            self.set_reference(sig)
            self.save_reference()
        metrics: dict[str, Any] = {}
        if len(sig.members) >= 2:
            self.proxy.append(sig.proxy if sig.proxy is not None else float(sig.members.mean()))
            self.wco.append(float(sig.members.min(axis=0).mean()))
            metrics.update({"detect/proxy_mean": self.proxy[-1], "detect/wco_mean": self.wco[-1]})
        thresholds = self.cfg.thresholds
        self.steps.append(int(step))
        for name, score in self.scores(sig).items():
            flag = bool(score > getattr(thresholds, name) and step >= self.cfg.warmup)
            self.flags.setdefault(name, []).append(flag)
            metrics[f"detect/{name}/score"] = float(score)
            metrics[f"detect/{name}/flag"] = float(flag)
        if self.stop.on is not None:
            self.early_stop(step, policy, tokenizer)
        return metrics

    def early_stop(self, step: int, policy: Any, tokenizer: Any) -> None:

        flags = self.flags[self.stop.on]
        if not flags[-1]:
            save_model(policy, tokenizer, self.run_dir.file(KEPT_POLICY))
            self.kept_step = int(step)
        stop, _ = detect.early_stop_step(self.steps, flags, self.cfg.warmup, self.stop.patience)
        if stop == step:
            self.stopped_at = int(step)

    # resume and end --------------------------------------------------------
    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Rebuild reference and flag history of a resumed run from its files."""
        with np.load(self.run_dir.file(REFERENCE_FILE)) as data:
            latents = data["latents"] if "latents" in data.files else None
            self.set_reference(Signals(data["members"], latents, data["lengths"],
                                       data["ended"], None))  # fmt: skip
        for row in rows:
            if not self.names or f"detect/{self.names[0]}/flag" not in row:
                continue
            self.steps.append(int(row["step"]))
            for name in self.names:
                self.flags.setdefault(name, []).append(bool(row[f"detect/{name}/flag"]))
            if "detect/wco_mean" in row:
                self.proxy.append(row["detect/proxy_mean"])
                self.wco.append(row["detect/wco_mean"])
        kept = [s for s, f in zip(self.steps, self.flags.get(self.stop.on or "", [])) if not f]
        self.kept_step = kept[-1] if kept else None

    def finish(self, state: Any) -> None:
        """After an early stop, load the kept policy's weights into the policy to be saved."""
        if self.stopped_at is None or self.kept_step is None:
            return
        from goodhartlab.models.lora import is_lora_model

        kept, _ = load_policy(str(self.run_dir.file(KEPT_POLICY)), device=str(state.device))
        if is_lora_model(state.policy):  # the kept policy was saved merged: it replaces it
            state.policy = kept
            return
        state.policy.load_state_dict(kept.state_dict())

    def summary_fields(self) -> dict[str, Any]:
        """detect_first_flag {detector: step or None}, early_stopped_at, saved_policy_step."""
        first = {n: detect.first_flag(self.steps, self.flags.get(n, [])) for n in self.names}
        out: dict[str, Any] = {"detect_first_flag": first, "early_stopped_at": self.stopped_at}
        if self.stop.on is not None:
            out["early_stop_on"] = self.stop.on
            out["saved_policy_step"] = self.kept_step if self.stopped_at is not None else None
        return out


def make_monitor(detect_cfg: DetectConfig, stop: EarlyStopConfig, reward_cfg: Any,
                 models: Any, run_dir: RunDir, device: Any) -> DetectMonitor:  # fmt: skip
    """Load the monitor ensemble and InfoRM the config names (or reuse the proxy's), and pick
    the detectors they allow."""

    ensemble = None
    if detect_cfg.ensemble:
        from dataclasses import replace

        members, seeds = list(detect_cfg.ensemble), reward_cfg.seeds
        monitor_cfg = replace(reward_cfg, reward_models=members, gold="toy",
                              seeds=shared_seeds(members, seeds, "detect.ensemble"))  # fmt: skip
        ensemble = load_reward_models(monitor_cfg, device)
    n_members = len(ensemble.members) if ensemble else len(models.members)
    inform = None
    if detect_cfg.inform:
        model, tok = load_reward_model(detect_cfg.inform, device=str(device))
        if not isinstance(model, InfoRM):
            raise ConfigError(f"field 'detect.inform': {detect_cfg.inform} is not an InfoRM")
        inform = (model.eval(), tok)
    else:
        inform = next(((m, t) for m, t in models.members if isinstance(m, InfoRM)), None)
    monitor = DetectMonitor(detect_cfg, stop, run_dir, reward_cfg.template, ensemble, inform)
    monitor.names = available_detectors(detect_cfg, n_members, inform is not None, stop.on)
    if stop.patience < 1:
        raise ConfigError(f"field 'early_stop.patience': {stop.patience} must be >= 1")
    return monitor
