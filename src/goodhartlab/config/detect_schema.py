"""Typed configuration of PPO's online hacking detectors (`detect.*`) and early stopping
(`early_stop.*`); the math is in analysis/detect.py, the wiring in recipes/ppo_detect.py.

Why a module of its own: ppo_schema stays about the PPO update; these sections are shared
by whatever recipe evaluates a policy against its SFT start. Import-light: dataclasses only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from goodhartlab.config.schemas import GenerationConfig, _f

DetectorName = Literal["disagreement", "disagreement_std", "latent", "csi", "length", "eos", "wco"]
DETECTORS: tuple[str, ...] = DetectorName.__args__  # type: ignore[attr-defined]


@dataclass
class DetectThresholds:
    disagreement: float = _f(1.5, "flag when member std / its SFT-sample value exceeds this")
    disagreement_std: float = _f(1.5, "the same with each member standardized on SFT samples")
    latent: float = _f(0.25, "flag when this fraction of InfoRM latents are outliers (p < alpha)")
    csi: float = _f(
        1.0, "flag when the cluster-separation index (per sample, see csi_eps) exceeds this"
    )
    length: float = _f(
        0.85, "flag when mean length moved this many SFT-length stds (toy study: docs/detection.md)"
    )
    eos: float = _f(0.02, "flag when the eos rate fell this much below the SFT samples'")
    wco: float = _f(0.05, "flag when the ensemble's worst case fell this much while proxy rose")


@dataclass
class DetectConfig:
    detectors: list[DetectorName] = field(
        default_factory=list,
        metadata={
            "help": "detectors to run at every evaluation (empty = every one the reward models "
            f"allow); choices: {', '.join(DETECTORS)}"
        },
    )
    thresholds: DetectThresholds = _f(DetectThresholds, "score above which a detector flags")
    warmup: int = _f(0, "iteration before which no detector flags")
    ensemble: list[str] = field(
        default_factory=list,
        metadata={
            "help": "monitor RMs / ensemble manifest for disagreement and wco (empty = the "
            "proxy's members, when there are several)"
        },
    )
    inform: str | None = _f(None, "InfoRM dir for latent/csi (null = the proxy if it is one)")
    alpha: float = _f(0.05, "latent outlier p-value threshold")
    predictive: bool = _f(
        True,
        "latent p-values from the small-sample F law (false, or eval.n_prompts <= latent dims "
        "+ 1: the seed's chi-squared)",
    )
    csi_eps: float = _f(
        1.0,
        "DBSCAN eps for csi, in units of the SFT latents' median distance to their k-th "
        "neighbour (k = csi_min_samples); csi is reported in the same unit",
    )
    csi_min_samples: int = _f(5, "DBSCAN min_samples for csi")


@dataclass
class EarlyStopConfig:
    on: DetectorName | None = _f(None, "stop training at this detector's first flag (null: off)")
    patience: int = _f(1, "consecutive flagged evaluations needed to stop")


@dataclass
class EvaluateLatentsConfig:
    checkpoints: list[str] = field(
        default_factory=list,
        metadata={"help": "policy dirs to compare with the SFT policy (`--checkpoint A ...`)"},
    )
    rm: str = _f("", "InfoRM dir, or a train-rm run dir holding one (`--rm`)")
    sft: str = _f("toy:sft", "the SFT policy whose samples are the reference cloud")
    device: str = _f("auto", "'auto' (CUDA if present), 'cpu', 'cuda:0', ...")
    seed: int = _f(0, "seed of sampling")
    prompts: str = _f("toy", "'toy' (held-out toy prompts) or a prompt file")
    n_prompts: int = _f(256, "prompts answered by every policy")
    template: str | None = _f(None, "policy prompt template")
    generation: GenerationConfig = _f(GenerationConfig, "sampling")
    alpha: float = _f(0.05, "outlier p-value threshold")
    predictive: bool = _f(
        True,
        "F-law p-values for an estimated covariance (false, or n_prompts <= dims + 1: chi-squared)",
    )
    embedding: Literal["auto", "tsne", "pca"] = _f(
        "auto", "2-D embedding: t-SNE (scikit-learn) when installed, else PCA"
    )
