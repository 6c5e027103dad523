"""Loading and saving policies, reward models and value models: the ONLY module touching weights.

A model source is one of:
- a local directory written by `save_pretrained` (ours or anyone's);
- a Hugging Face hub id (works offline only if it is in the local cache);
- a toy spec "toy:policy", "toy:rm", "toy:value" (optionally "-small"): random init, toy tokenizer.
Weights are saved as safetensors and load from safetensors only: a dir with only pickle weights
(pytorch_model.bin) is an error unless the caller passes allow_pickle_weights=True (then
`weights_only=True`). `trust_remote_code` stays off unless the caller asks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from goodhartlab.errors import input_error

Role = Literal["policy", "scalar"]
DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(name: str = "auto"):
    """'auto' -> CUDA when present, else CPU; any torch device string otherwise."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _torch_dtype(name: str):
    import torch

    return None if name == "auto" else getattr(torch, name)


def _is_local(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or Path(source).expanduser().exists()


def load_tokenizer(source: str, trust_remote_code: bool = False, padding_side: str = "left"):
    """The tokenizer of a model source; toy specs get the toy tokenizer."""
    if source.startswith("toy:"):
        from goodhartlab.toyworld.vocab import build_tokenizer

        return build_tokenizer(padding_side=padding_side)
    from transformers import AutoTokenizer

    if _declares_generic_tokenizer(source):
        from transformers import PreTrainedTokenizerFast as AutoTokenizer
    tok = _from_pretrained(AutoTokenizer, source, trust_remote_code=trust_remote_code)
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


GENERIC_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")


def _declares_generic_tokenizer(source: str) -> bool:
    """A local dir whose tokenizer_config.json names the generic fast tokenizer class.

    Why: transformers 5 loads such a tokenizer as its model type's class for some model types
    (a Qwen2 dir gets `Qwen2Tokenizer`, which adds a token and decodes without spaces), so a
    word-level tokenizer saved beside a Qwen2 model would not round-trip. The file's own
    declaration wins for local dirs; hub ids keep transformers' choice.
    """
    import json

    path = Path(source).expanduser() / "tokenizer_config.json"
    if not _is_local(source) or not path.is_file():
        return False
    try:
        declared = json.loads(path.read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError):
        return False
    return declared in GENERIC_TOKENIZERS


PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


def weights_kwargs(path: Path | None, allow_pickle_weights: bool) -> dict[str, Any]:
    """`from_pretrained` keywords that load safetensors only, unless pickle is allowed.

    Why: unpickling a downloaded `pytorch_model.bin` can run arbitrary code. With the opt-in,
    pickle files load through `torch.load(weights_only=True)` (tensors only). `path` is a local
    model dir (checked here for a clear one-line error) or None for a hub id.
    """
    if allow_pickle_weights:
        return {"weights_only": True}
    if path is not None and not any(path.glob("*.safetensors")):
        pickled = sorted(p.name for pattern in PICKLE_WEIGHTS for p in path.glob(pattern))
        if pickled:
            raise input_error(
                f"holds only pickle weights ({', '.join(pickled)}), which can run code when "
                "loaded; convert them to safetensors, or opt in with allow_pickle_weights=true "
                "in the model's section (e.g. model.allow_pickle_weights=true)",
                path,
            )
    return {"use_safetensors": True}


def _from_pretrained(cls: Any, source: str, allow_pickle_weights: bool = False, **kwargs: Any):
    """`cls.from_pretrained` with a one-line error for a missing dir or an unreachable hub id;
    model weights load from safetensors only unless `allow_pickle_weights` (`weights_kwargs`)."""
    path, tokenizer = None, cls.__name__ in ("AutoTokenizer", *GENERIC_TOKENIZERS)
    if _is_local(source):
        path = Path(source).expanduser()
        if not path.is_dir():
            raise input_error("model directory not found", path)
        if not (path / "config.json").exists() and not tokenizer:
            raise input_error("not a model directory (no config.json)", path)
        source = str(path)
    if not tokenizer:
        kwargs.update(weights_kwargs(path, allow_pickle_weights))
    try:
        return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        hint = " (HF_HUB_OFFLINE is set: only locally cached hub ids load)" if offline else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise input_error(f"cannot load {cls.__name__}: {first}{hint}", source) from exc


def load_model(
    source: str,
    role: Role = "policy",
    device: str = "auto",
    dtype: str = "float32",
    trust_remote_code: bool = False,
    seed: int = 0,
    tokenizer: Any = None,
    allow_pickle_weights: bool = False,
):
    """Load (model, tokenizer) for a role: 'policy' (causal LM) or 'scalar' (RM / value, 1 label).

    A toy spec builds a fresh random model seeded by `seed`. The tokenizer must fit the model's
    embedding table (a mismatch is a clear error, not an index error deep in a forward pass).
    """
    import torch

    tok = tokenizer if tokenizer is not None else load_tokenizer(source, trust_remote_code)
    if source.startswith("toy:"):
        model = _toy_model(source, role, tok, seed)
    else:
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

        cls = AutoModelForCausalLM if role == "policy" else AutoModelForSequenceClassification
        extra = {"num_labels": 1} if role == "scalar" else {}
        model = _from_pretrained(
            cls, source, allow_pickle_weights, dtype=_torch_dtype(dtype),
            trust_remote_code=trust_remote_code, **extra,
        )  # fmt: skip
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    check_tokenizer_fits(model, tok, source)
    model.to(resolve_device(device))
    if dtype != "auto":
        model.to(getattr(torch, dtype))
    return model, tok


def _toy_model(source: str, role: Role, tok: Any, seed: int):
    import torch
    from transformers import GPTNeoXForCausalLM, GPTNeoXForSequenceClassification

    from goodhartlab.models.toy import parse_toy_spec, toy_config

    _, size = parse_toy_spec(source)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if role == "policy":
            return GPTNeoXForCausalLM(toy_config(size, tok))
        return GPTNeoXForSequenceClassification(toy_config(size, tok, num_labels=1))


def check_tokenizer_fits(model: Any, tokenizer: Any, source: str) -> None:
    """Raise if the tokenizer can produce ids the model has no embedding for."""
    n_embed = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > n_embed:
        raise input_error(
            f"tokenizer has {len(tokenizer)} tokens but the model embeds only {n_embed}: "
            "tokenizer/model mismatch",
            source,
        )


def freeze(model: Any) -> Any:
    """Eval mode and no gradients: for reference, reward, gold and other frozen models."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def write_pretrained(model: Any, tokenizer: Any, directory: str | Path) -> None:
    """Write safetensors + HF config + tokenizer into an existing `directory` (not atomic).

    Why separate from `save_model`: a checkpoint (`runs.checkpoint.save_checkpoint`) writes the
    model beside its optimizer state inside one atomic directory of its own; it takes this
    function (bound to the model) as its model writer.
    """
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)


def save_model(model: Any, tokenizer: Any, out_dir: str | Path, merge: bool = True) -> Path:
    """Save as safetensors + HF config + tokenizer, atomically (temp dir, then rename).

    Why atomic: a run killed while saving must not leave a half-written checkpoint that a later
    `--resume` or `from_pretrained` would trust. A LoRA model is saved merged (plain
    transformers loads it), or as its adapter only with `merge=False` (a resume point). In a
    multi-process run only rank 0 writes.
    """
    from goodhartlab.models.lora import merged_copy
    from goodhartlab.runs.atomic import atomic_directory
    from goodhartlab.runs.distributed import is_main_process

    out = Path(out_dir)
    if not is_main_process():
        return out
    with atomic_directory(out) as tmp:
        write_pretrained(merged_copy(model) if merge else model, tokenizer, tmp)
    return out
