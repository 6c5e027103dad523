"""Typed configuration of every command. Import-light: dataclasses only (CLI `--help` reads them).

Every field has a default so each command runs with no arguments on the toy world. Help text
lives in `metadata={"help": ...}` and is printed by `goodhart <command> --help`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from goodhartlab.config.ranges import AT_LEAST_1, NON_NEGATIVE, POSITIVE, UNIT
from goodhartlab.config.toyworld_schema import ToyWorldSpec


def _f(default, help: str, range=None):
    """A field with a default (or default factory for dataclasses), help text and optionally the
    allowed range of a number (config/ranges.py; the loader checks it)."""
    metadata = {"help": help} if range is None else {"help": help, "range": range}
    if isinstance(default, type):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class LoraSettings:
    r: int = _f(0, "LoRA rank (0 = off: every weight trains)", range=NON_NEGATIVE)
    alpha: float = _f(
        16.0, "LoRA scale numerator (the update is scaled by alpha / r)", range=POSITIVE
    )
    dropout: float = _f(
        0.0, "dropout on the LoRA path (0 keeps runs exactly repeatable)", range=UNIT
    )
    target_modules: list[str] | None = _f(
        None, "modules to adapt (null: peft's default for the architecture; [all-linear]: all)"
    )


@dataclass
class ModelConfig:
    source: str = _f("toy:policy", "HF hub id, local dir, or toy spec (toy:policy[-small])")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = _f("float32", "weights dtype")
    trust_remote_code: bool = _f(False, "allow model code from the hub (off: security)")
    allow_pickle_weights: bool = _f(
        False, "load pickle weights (pytorch_model.bin) when a model has no safetensors"
    )
    lora: LoraSettings = _f(LoraSettings, "low-rank adapters (peft); merged into the saved model")
    precision: Literal["fp32", "bf16-mixed"] = _f(
        "fp32", "compute precision: bf16-mixed = bf16 autocast over fp32 weights (GPU training)"
    )


@dataclass
class GenerationConfig:
    max_new_tokens: int = _f(24, "response token limit", range=AT_LEAST_1)
    temperature: float = _f(1.0, "sampling temperature (0 = greedy)", range=NON_NEGATIVE)
    top_k: int = _f(0, "keep the k most likely tokens (0 = off)", range=NON_NEGATIVE)
    top_p: float = _f(1.0, "nucleus sampling mass (1 = off)", range=UNIT)
    batch_size: int = _f(256, "prompts per generation call", range=AT_LEAST_1)


@dataclass
class OptimConfig:
    lr: float = _f(3e-3, "peak learning rate (AdamW)", range=POSITIVE)
    weight_decay: float = _f(0.0, "AdamW weight decay", range=NON_NEGATIVE)
    warmup_steps: int = _f(20, "linear warmup steps", range=NON_NEGATIVE)
    min_lr_ratio: float = _f(0.1, "cosine decay floor as a fraction of lr", range=UNIT)
    max_grad_norm: float = _f(1.0, "gradient clipping norm", range=POSITIVE)


# Preference-file layouts `data.format=` reads (data/importers.py); "auto" tells them by columns.
PreferenceFormat = Literal["auto", "trl", "hh", "alpacafarm", "gold_labelled", "scored_generations"]
_FORMAT_HELP = (
    "layout of preference files: auto (by columns), trl (prompt/chosen/rejected, implicit or "
    "conversational), hh (Anthropic HH transcripts), alpacafarm (output_1/output_2/preference), "
    "gold_labelled (the seeds' answers[2] + preference 0/1), scored_generations (answers + "
    "gold_scores: pairs by gold)"
)
_SKIP_HELP = "drop rows that fail validation (counted in the summary) instead of stopping"


# Demonstration layouts `sft data.format=` reads (data/sft_importers.py).
DemonstrationFormat = Literal["auto", "trl", "alpaca", "hh"]


@dataclass
class SFTDataConfig:
    train: str = _f(
        "toy", "'toy' (generate the toy world), a demonstrations file or a dataset (docs/data.md)"
    )
    eval: str = _f("toy", "'toy' or held-out demonstrations (file or dataset)")
    format: DemonstrationFormat = _f(
        "auto",
        "layout: auto (by columns), trl (prompt/completion or conversational messages), alpaca "
        "(instruction/input/output), hh (the chosen HH transcript: its last reply is the target)",
    )
    skip_invalid: bool = _f(False, _SKIP_HELP)
    prompt_key: str = _f("prompt", "column holding the prompt")
    completion_key: str = _f("completion", "column holding the completion")
    template: str | None = _f(
        None, "prompt template with {prompt}; default: tokenizer's chat template"
    )
    max_length: int = _f(64, "max tokens of prompt + completion", range=AT_LEAST_1)
    toy: ToyWorldSpec = _f(ToyWorldSpec, "toy world sizes when train/eval = 'toy'")


@dataclass
class SFTTrainConfig:
    epochs: int = _f(4, "passes over the demonstrations", range=AT_LEAST_1)
    batch_size: int = _f(64, "demonstrations per step", range=AT_LEAST_1)
    eval_every: int = _f(100, "steps between held-out loss evaluations", range=AT_LEAST_1)
    checkpoint_every: int = _f(200, "steps between checkpoints (resume points)", range=AT_LEAST_1)
    keep_checkpoints: int = _f(2, "how many recent checkpoints to keep", range=NON_NEGATIVE)


@dataclass
class SampleConfig:
    n_prompts: int = _f(
        512, "held-out prompts sampled after training (0 = skip)", range=NON_NEGATIVE
    )
    generation: GenerationConfig = _f(GenerationConfig, "sampling settings")


@dataclass
class SFTConfig:
    seed: int = _f(0, "seed of init, data order and sampling")
    device: str = _f("auto", "'auto' (CUDA if present), 'cpu', 'cuda:0', ...")
    model: ModelConfig = _f(ModelConfig, "the policy to fine-tune")
    data: SFTDataConfig = _f(SFTDataConfig, "demonstrations")
    optim: OptimConfig = _f(OptimConfig, "optimizer")
    train: SFTTrainConfig = _f(SFTTrainConfig, "loop")
    sample: SampleConfig = _f(SampleConfig, "samples of the trained policy with gold scores")


@dataclass
class ToyWorldConfig:
    world: ToyWorldSpec = _f(ToyWorldSpec, "sizes, seed and label noise of the toy data")


@dataclass
class DemoConfig:
    sft: SFTConfig = _f(SFTConfig, "the SFT stage (its data.toy is the toy world)")


@dataclass
class ToySeedConfig:
    """Which toy world toy pairs come from: only its seed is read here.

    Why not the whole `ToyWorldSpec`: train-rm and evaluate-rm sample their own pairs (sizes and
    label noise are `data.n_*_pairs` and `data.label_*`), so the world's sizes and noise were
    accepted under `data.toy.*` and silently ignored.
    """

    seed: int = _f(0, "toy world seed: the cached toy SFT policy ('toy:sft') and the pair streams")


@dataclass
class PreferenceDataConfig:
    train: str = _f(
        "toy",
        "'toy' (policy-sample pairs labelled by gold), a preference file, or a Hugging Face "
        "dataset (ID_OR_DIR?split=...,subset=...)",
    )
    eval: str = _f("toy", "'toy' or a held-out preference file")
    policy: str = _f("toy:sft", "policy whose samples form toy pairs; 'toy:sft' = cached toy SFT")
    n_train_pairs: int = _f(16000, "toy pairs to train on", range=AT_LEAST_1)
    n_eval_pairs: int = _f(2000, "toy held-out pairs", range=AT_LEAST_1)
    label_temperature: float = _f(1.0, "Bradley–Terry temperature of gold labels", range=POSITIVE)
    label_flip_prob: float = _f(
        0.25, "label noise: flip probability (the seeds use 25%)", range=UNIT
    )
    format: PreferenceFormat = _f("auto", _FORMAT_HELP)
    skip_invalid: bool = _f(False, _SKIP_HELP)
    prompt_key: str | None = _f("prompt", "prompt column (null: implicit prompt)")
    chosen_key: str = _f("chosen", "preferred response column")
    rejected_key: str = _f("rejected", "other response column")
    template: str | None = _f(None, "prompt template; default: tokenizer's chat template")
    max_length: int = _f(64, "max tokens of prompt + response", range=AT_LEAST_1)
    generation: GenerationConfig = _f(GenerationConfig, "sampling of toy policy pairs")
    balance_len: bool = _f(False, "length-balance the train pairs (Singhal et al.)")
    balance_bin_width: float = _f(
        10.0, "balance_len: width of the length-difference bins", range=POSITIVE
    )
    balance_equal: Literal["as_shorter", "keep"] = _f(
        "as_shorter", "balance_len: equal lengths count as shorter (seed), or are all kept"
    )
    rand_ratio: float = _f(
        0.0, "random-pair augmentation ratio (R-DA), appended", range=NON_NEGATIVE
    )
    carto_file: str | None = _f(None, "cartography stats JSONL for confidence truncation")
    carto_low: float | None = _f(None, "keep pairs with confidence above this")
    carto_high: float | None = _f(None, "keep pairs with confidence below this")
    toy: ToySeedConfig = _f(ToySeedConfig, "the toy world whose SFT policy samples toy pairs")

    def __post_init__(self) -> None:
        # Why an error: toy pairs are sampled for both splits at once, so a file beside 'toy'
        # used to be ignored silently (train-rm trained on toy pairs, exit 0).
        if (self.train == "toy") != (self.eval == "toy"):
            given, toy = ("train", "eval") if self.eval == "toy" else ("eval", "train")
            raise ValueError(
                f"{given}: a preference file cannot be mixed with {toy}='toy'; give both files "
                f"(data.train=TRAIN.jsonl data.eval=HELD_OUT.jsonl) or leave both 'toy'"
            )


@dataclass
class RMLossConfig:
    l2_coef: float = _f(0.001, "L2 on scores, coef·½(r_c² + r_r²) (the seeds use 0.001)")
    center_coef: float = _f(0.0, "centering term coef·(r_c + r_r)²")
    use_margin: bool = _f(False, "subtract the data's 'margin' column inside the sigmoid")


@dataclass
class InfoRMSettings:
    enabled: bool = _f(False, "train an information-bottleneck reward model (InfoRM)")
    latent_dim: int = _f(32, "bottleneck dimension d", range=AT_LEAST_1)
    beta: float = _f(0.1, "weight of the KL term", range=NON_NEGATIVE)
    kl_mode: Literal["standard_sum", "mean_pooled"] = _f(
        "standard_sum", "per-dim KL sum, or the seed code's dim-mean-pooled KL"
    )
    decoder: Literal["linear", "swiglu"] = _f("linear", "decoder head")


@dataclass
class RMTrainConfig:
    epochs: int = _f(2, "passes over the pairs", range=AT_LEAST_1)
    batch_size: int = _f(64, "pairs per step", range=AT_LEAST_1)
    checkpoint_every: int = _f(200, "steps between checkpoints", range=AT_LEAST_1)
    log_cartography: bool = _f(True, "log per-example margins each epoch (dataset cartography)")


@dataclass
class TrainRMConfig:
    seeds: list[int] = field(default_factory=lambda: [1], metadata={"help": "one member per seed"})
    device: str = _f("auto", "'auto', 'cpu', 'cuda:0', ...")
    model: ModelConfig = field(
        default_factory=lambda: ModelConfig(source="toy:sft"),
        metadata={"help": "backbone: HF id / dir / toy spec; 'toy:sft' = cached toy SFT policy"},
    )
    data: PreferenceDataConfig = _f(PreferenceDataConfig, "preference pairs")
    loss: RMLossConfig = _f(RMLossConfig, "Bradley–Terry loss options")
    inform: InfoRMSettings = _f(InfoRMSettings, "information bottleneck")
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=20),
        metadata={"help": "optimizer"},
    )
    train: RMTrainConfig = _f(RMTrainConfig, "loop")


@dataclass
class RMEvalDataConfig:
    eval: str = _f("toy", "'toy' (policy-sample pairs labelled by gold) or a preference file")
    policy: str = _f("toy:sft", "policy whose samples form toy pairs; 'toy:sft' = cached toy SFT")
    n_eval_pairs: int = _f(2000, "toy held-out pairs", range=AT_LEAST_1)
    label_temperature: float = _f(1.0, "Bradley–Terry temperature of gold labels", range=POSITIVE)
    format: PreferenceFormat = _f("auto", _FORMAT_HELP)
    skip_invalid: bool = _f(False, _SKIP_HELP)
    prompt_key: str | None = _f("prompt", "prompt column (null: implicit prompt)")
    chosen_key: str = _f("chosen", "preferred response column")
    rejected_key: str = _f("rejected", "other response column")
    template: str | None = _f(None, "prompt template; default: tokenizer's chat template")
    generation: GenerationConfig = _f(GenerationConfig, "sampling of toy policy pairs")
    toy: ToySeedConfig = _f(ToySeedConfig, "the toy world whose SFT policy samples toy pairs")


@dataclass
class EnsembleAggregateConfig:
    method: Literal["mean", "wco", "uwo"] = _f("mean", "how member scores combine")
    uwo_coef: float = _f(0.5, "UWO: mean − uwo_coef·variance across members")
    ddof: int = _f(0, "variance ddof (the seeds: 0 for best-of-n, 1 for PPO)", range=NON_NEGATIVE)


@dataclass
class EvaluateRMConfig:
    rm: str = _f("", "RM dir, ensemble.json, or a train-rm run dir (all its members)")
    device: str = _f("auto", "'auto', 'cpu', 'cuda:0', ...")
    data: RMEvalDataConfig = _f(RMEvalDataConfig, "held-out pairs")
    ensemble: EnsembleAggregateConfig = _f(EnsembleAggregateConfig, "ensemble aggregation")
    write_score_stats: bool = _f(True, "write eval score mean/std into each RM's saved config")
