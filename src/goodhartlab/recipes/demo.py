"""`goodhart demo`: the whole chain on the toy world, printing where everything went.

Steps: 1 toy world + SFT (DEMO/sft), 2 a table of held-out samples with their gold scores and
the teacher's correlated proxies. Later stages (reward models, best-of-n, PPO, report) join this
chain as they land.
"""

from __future__ import annotations

from goodhartlab.config.schemas import DemoConfig
from goodhartlab.runs import RunDir


def _print_samples(summary: dict, samples: list[dict], world: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    teacher = world["teacher"]
    console.print(
        f"[bold]toy world[/]: teacher mean gold {teacher['gold_mean']:.3f}; "
        f"Pearson r(length, gold) = {teacher['corr_length_gold']:+.3f}, "
        f"r(fillers, gold) = {teacher['corr_fillers_gold']:+.3f} (the correlated proxies)"
    )
    table = Table(title="SFT policy on held-out prompts")
    for col in ("prompt", "response", "eos", "gold"):
        table.add_column(col)
    for row in samples[:10]:
        table.add_row(
            row["prompt"],
            row["response"],
            "yes" if row["ended"] else "no",
            f"{row.get('gold', float('nan')):.2f}",
        )
    console.print(table)
    if "gold_mean" in summary:
        console.print(
            f"SFT samples: mean gold {summary['gold_mean']:.3f} vs teacher "
            f"{summary['teacher_gold_mean']:.3f} ({100 * summary['gold_ratio_to_teacher']:.1f}%), "
            f"eos rate {100 * summary['eos_rate']:.1f}%"
        )


def run(cfg: DemoConfig, run_dir: RunDir, resume: bool = False) -> dict:
    import json

    from goodhartlab.config import dump_config
    from goodhartlab.recipes import sft

    sft_dir = RunDir.prepare(run_dir.file("sft"), dump_config(cfg.sft), resume=resume)  # 1
    summary = sft.run(cfg.sft, sft_dir, resume=resume)
    samples = [json.loads(x) for x in sft_dir.file("samples.jsonl").read_text().splitlines()]
    world = json.loads(sft_dir.file("toyworld/world.json").read_text())
    _print_samples(summary, samples, world)  # 2
    result = {"sft": {k: v for k, v in summary.items()}, "teacher": world["teacher"]}
    run_dir.write_json("demo_summary.json", result)
    print(
        f"outputs: {run_dir.path} (sft model: {summary['model_dir']}, summary: demo_summary.json)"
    )
    return result
