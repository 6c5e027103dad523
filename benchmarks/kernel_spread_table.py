"""How much the toy world's figures move from one machine to another, and whether the pin holds.

Run:  python benchmarks/kernel_spread_table.py [--out runs/kernel_spread] [--quick]

Why: the toy chain (SFT -> reward model -> PPO) amplifies last-bit float differences, and torch
chooses other CPU kernels on other machines (runs/cpu_kernels.py). Three machines are emulated on
this one by capping each library's dispatch (ATen's instruction set, oneDNN's ISA, MKL's), each
with torch's native kernel choice and a fresh toy-model cache; then the portable mode (the
default) runs on the uncapped and on the most-capped setting. The native rows show the spread
a user would see between machines; the two portable rows must be equal.

Each variant builds the toy SFT policy (into its own $GOODHART_CACHE), one toy BT reward model
(seed 1), and two toy PPO runs against it: no regularizer and KL 0.2 in the reward. `--quick`
uses the smoke presets (seconds; for checking the script, not for the docs). Runs are reused
when their summary exists. Writes OUT/table.md and OUT/spread.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from goodhart_runs import run_goodhart  # benchmarks/, beside this script

# name -> (GOODHART_CPU_KERNELS, what the emulated machine's libraries may use)
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "native, AVX-512 (this machine)": ("native", {}),
    "native, oneDNN capped at AVX2": ("native", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "native, AVX2-only machine": (
        "native",
        {
            "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        },
    ),
    "portable, AVX-512 (this machine)": ("portable", {}),
    "portable, AVX2-only machine": (
        "portable",
        {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    ),
}
CLEARED = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")
FIGURES = ("sft_gold", "rm_accuracy_vs_gold", "none_peak_gold", "none_final_gold", "kl_final_gold")


def one_variant(root: Path, mode: str, caps: dict[str, str], quick: bool) -> dict[str, float]:
    """The chain's figures under one emulated machine, with its own fresh toy-model cache."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env |= {"GOODHART_CPU_KERNELS": mode, "GOODHART_CACHE": str(root / "cache"), **caps}
    env |= {"GOODHART_THREADS": "1", "OMP_NUM_THREADS": "1"}
    preset = ["--config", "smoke"] if quick else []
    rm, _ = run_goodhart(["train-rm", *preset], root / "rm", "rm_summary.json", env)
    member = next(iter(rm["members"].values()))
    ppo = [*preset, f"reward.reward_models=[{root / 'rm'}]"]
    none, _ = run_goodhart(["ppo", *ppo], root / "ppo-none", "ppo_summary.json", env)
    kl = ["regularizer.kind=kl", "regularizer.placement=reward", "regularizer.coef=0.2"]
    kl_run, _ = run_goodhart(["ppo", *ppo, *kl], root / "ppo-kl", "ppo_summary.json", env)
    sft = next((root / "cache").glob("toy-sft-*/sft_summary.json"), None)
    return {
        "sft_gold": json.loads(sft.read_text())["gold_mean"] if sft else float("nan"),
        "rm_accuracy_vs_gold": member["accuracy_vs_gold"],
        "none_peak_gold": none["peak_gold"],
        "none_final_gold": none["final_gold"],
        "kl_final_gold": kl_run["final_gold"],
    }


def markdown(rows: dict[str, dict[str, float]]) -> str:
    lines = ["| variant | " + " | ".join(FIGURES) + " |", "|---" * (len(FIGURES) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{r[f]:.3f}" for f in FIGURES) + " |"
              for name, r in rows.items()]  # fmt: skip
    native = [r for name, r in rows.items() if name.startswith("native")]
    if len(native) < 2:  # a spread needs two machines
        return "\n".join(lines) + "\n"
    spread = {f: max(r[f] for r in native) - min(r[f] for r in native) for f in FIGURES}
    sd = {f: statistics.stdev(r[f] for r in native) for f in FIGURES}
    lines.append("| spread of the native rows (max − min) | "
                 + " | ".join(f"{spread[f]:.3f}" for f in FIGURES) + " |")  # fmt: skip
    lines.append("| std of the native rows | " + " | ".join(f"{sd[f]:.3f}" for f in FIGURES) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/kernel_spread")
    parser.add_argument("--quick", action="store_true", help="smoke presets (seconds)")
    parser.add_argument(
        "--variants", type=int, nargs="+", help="indices of VARIANTS to run (default: all)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows: dict[str, dict[str, float]] = {}
    for i, (name, (mode, caps)) in enumerate(VARIANTS.items()):
        if args.variants is not None and i not in args.variants:
            continue
        start = time.perf_counter()
        rows[name] = one_variant(out / f"variant{i}", mode, caps, args.quick)
        print(f"{name}: {rows[name]} ({time.perf_counter() - start:.0f} s)", flush=True)
    portable = [r for name, r in rows.items() if name.startswith("portable")] or [{}]
    table = markdown(rows)
    print(table)
    print("portable rows equal:", all(r == portable[0] for r in portable))
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table)
    (out / "spread.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
