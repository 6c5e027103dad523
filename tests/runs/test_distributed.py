"""Data-parallel training under torchrun (2 CPU processes, gloo) equals one process with the
doubled batch, only rank 0 writes the run dir, and a killed 2-process run resumes exactly:
SFT, train-rm and PPO; for SFT and train-rm the same holds with the model sharded by FSDP
(configs/accelerate/fsdp_cpu_2proc.yaml)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from goodhartlab.cli import main

SFT = ["sft", "--config", "smoke", "device=cpu", "data.toy.n_train_demos=320",
       "data.toy.n_eval_prompts=32", "train.epochs=1", "train.eval_every=10",
       "train.checkpoint_every=10", "sample.n_prompts=0"]  # fmt: skip
RM = ["train-rm", "--config", "smoke", "device=cpu", "model.source=toy:rm", "seeds=[1]",
      "train.checkpoint_every=4", "optim.lr=3e-3"]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "GOODHART_THREADS": "1"}


def _torchrun(args: list[str], target: tuple[str, ...] = ("-m", "goodhartlab")) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            "2", *target, *args]  # fmt: skip


ACCELERATE = Path(__file__).parents[2] / "configs" / "accelerate"


def _accelerate(launcher: str, args: list[str]) -> list[str]:
    config, *flags = launcher.split()
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(ACCELERATE / config), *flags, "-m", "goodhartlab", *args]  # fmt: skip


def _run2(args: list[str], launcher: str = "torchrun", returncode: int = 0) -> str:
    """Run with 2 processes under torchrun, or `accelerate launch` with the config file (and
    launcher flags) in `launcher`; returns stderr."""
    cmd = _torchrun(args) if launcher == "torchrun" else _accelerate(launcher, args)
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert done.returncode == returncode, done.stderr[-3000:]
    return done.stderr


def _metrics(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


def _assert_close_metrics(two: list[dict], one: list[dict], keys: tuple[str, ...]) -> None:
    assert [r["step"] for r in two] == [r["step"] for r in one]  # one row per step: rank 0 only
    for key in keys:
        got, want = [r[key] for r in two if key in r], [r[key] for r in one if key in r]
        assert len(got) == len(want) > 0
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5), key


def _assert_close_weights(a: Path, b: Path) -> None:
    """Float summation order differs (two half-batch sums + all-reduce): measured max |diff|
    1.3e-5 after 20 AdamW steps at lr 3e-3 (a step moves a weight by ~lr)."""
    ours, ref = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert ours.keys() == ref.keys()
    for key in ref:
        torch.testing.assert_close(ours[key], ref[key], rtol=1e-3, atol=1e-4)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GOODHART_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def sft_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("sft")
    assert main([*SFT, "--out", str(base / "one"), "train.batch_size=16"]) == 0
    stderr = _run2([*SFT, "--out", str(base / "two"), "train.batch_size=8"])
    assert stderr.count("sft: 20/20") == 1  # rank 0's progress only
    return base / "one", base / "two"


def test_sft_two_processes_equal_one_process_with_twice_the_batch(sft_runs) -> None:
    one, two = sft_runs
    rows = _metrics(two / "metrics.jsonl")
    assert len(rows) == 20  # 320 demos / (2 x 8) per step
    _assert_close_metrics(rows, _metrics(one / "metrics.jsonl"), ("loss/train", "loss/eval", "lr"))
    _assert_close_weights(two / "model", one / "model")
    summary = json.loads((two / "sft_summary.json").read_text())
    assert summary["loss/eval"] == pytest.approx(
        json.loads((one / "sft_summary.json").read_text())["loss/eval"], rel=1e-4
    )
    # rank 1 wrote nothing of its own: the same files as the single-process run
    assert _files(two) == _files(one)


def test_accelerate_launch_with_the_cpu_config_runs_two_processes(sft_runs, tmp_path) -> None:
    """configs/accelerate/cpu_2proc.yaml starts 2 processes (the `--cpu` flag alone starts 1):
    the same steps and numbers as the torchrun run."""
    _, two = sft_runs
    out = tmp_path / "accelerate"
    stderr = _run2([*SFT, "--out", str(out), "train.batch_size=8"], "cpu_2proc.yaml")
    assert "fsdp" not in stderr  # DDP semantics: every process holds the whole model
    assert _metrics(out / "metrics.jsonl") == _metrics(two / "metrics.jsonl")


def test_fsdp_sft_shards_and_equals_one_process_with_twice_the_batch(sft_runs, tmp_path):
    """Really sharded (each rank holds half the parameters), the same steps as 1 process x 2B,
    only rank 0 wrote, and RUN/model (gathered on rank 0) loads with plain from_pretrained.
    Then a resume from its step-10 checkpoint (gathered optimizer state, sharded back on
    load) finishes with the same metrics and weights."""
    from transformers import AutoModelForCausalLM

    one, _ = sft_runs
    out = tmp_path / "fsdp"
    stderr = _run2([*SFT, "--out", str(out), "train.batch_size=8"], "fsdp_cpu_2proc.yaml")
    assert "fsdp (FULL_SHARD, 2 processes): rank 0 holds 55,808 of 111,488 parameters" in stderr
    _assert_close_metrics(_metrics(out / "metrics.jsonl"), _metrics(one / "metrics.jsonl"),
                          ("loss/train", "loss/eval", "lr"))  # fmt: skip
    _assert_close_weights(out / "model", one / "model")
    assert _files(out) == _files(one)
    model, info = AutoModelForCausalLM.from_pretrained(out / "model", output_loading_info=True)
    assert type(model).__name__ == "GPTNeoXForCausalLM"  # not FSDP's wrapper class
    assert not any(info.values()), info  # no missing, unexpected or mismatched weights
    ids = torch.tensor([[1, 5, 9, 12, 7]])
    ref = AutoModelForCausalLM.from_pretrained(one / "model")
    torch.testing.assert_close(model(ids).logits, ref(ids).logits, rtol=1e-3, atol=1e-3)
    resumed = tmp_path / "resumed"  # as if killed after the step-10 checkpoint
    shutil.copytree(out, resumed)
    shutil.rmtree(resumed / "model")
    (resumed / "sft_summary.json").unlink()
    _run2([*SFT, "--out", str(resumed), "train.batch_size=8", "--resume"], "fsdp_cpu_2proc.yaml")
    assert _metrics(resumed / "metrics.jsonl") == _metrics(out / "metrics.jsonl")
    _assert_close_weights(resumed / "model", out / "model")


def _kill_at_first_checkpoint(args: list[str], marker: Path) -> None:
    """Start a 2-process run and SIGKILL the launcher and both workers, uncleanly, as soon as
    `marker` (its first checkpoint's `latest`) exists."""
    proc = subprocess.Popen(_torchrun(args), env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert marker.exists()


def test_killed_two_process_run_resumes_to_the_same_numbers(sft_runs, tmp_path) -> None:
    _, two = sft_runs
    out = tmp_path / "killed"
    args = [*SFT, "--out", str(out), "train.batch_size=8"]
    _kill_at_first_checkpoint(args, out / "checkpoints" / "latest")
    assert not (out / "sft_summary.json").exists()
    _run2([*args, "--resume"])
    assert _metrics(out / "metrics.jsonl") == _metrics(two / "metrics.jsonl")
    _assert_close_weights(out / "model", two / "model")


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    from goodhartlab.toyworld.world import ToyWorldSpec, make

    out = tmp_path_factory.mktemp("world")
    make(out, ToyWorldSpec(n_train_demos=10, n_eval_prompts=10, n_train_pairs=250,
                           n_eval_pairs=100, label_flip_prob=0.0))  # fmt: skip
    return [f"data.train={out / 'prefs_train.jsonl'}", f"data.eval={out / 'prefs_eval.jsonl'}"]


@pytest.fixture(scope="module")
def rm_one(pair_files, tmp_path_factory):
    """One process, batch 32: the reference for the 2-process runs."""
    one = tmp_path_factory.mktemp("rm") / "one"
    assert main([*RM, *pair_files, "--out", str(one), "train.batch_size=32"]) == 0
    return one


@pytest.mark.parametrize("launcher", ["torchrun", "fsdp_cpu_2proc.yaml"])
def test_train_rm_two_processes_equal_one_process_with_twice_the_batch(
    pair_files, rm_one, tmp_path, launcher
):
    one, two = rm_one, tmp_path / "two"
    stderr = _run2([*RM, *pair_files, "--out", str(two), "train.batch_size=16"], launcher)
    assert ("fsdp (FULL_SHARD, 2 processes): rank 0 holds" in stderr) == (launcher != "torchrun")
    rows = _metrics(two / "rm_seed1" / "metrics.jsonl")
    assert len(rows) == 8  # 250 pairs / 32 per step, the last step's shards uneven (13 + 13)
    keys = ("loss/total", "rm/train_accuracy")
    _assert_close_metrics(rows, _metrics(one / "rm_seed1" / "metrics.jsonl"), keys)
    _assert_close_weights(two / "rm_seed1" / "model", one / "rm_seed1" / "model")
    carto = _metrics(two / "rm_seed1" / "cartography.jsonl")
    assert len(carto) == 250  # every pair's margin, gathered from both ranks
    a = json.loads((two / "rm_summary.json").read_text())["members"]["1"]
    b = json.loads((one / "rm_summary.json").read_text())["members"]["1"]
    assert a["accuracy_vs_labels"] == b["accuracy_vs_labels"]
    assert a["accuracy_vs_gold"] == b["accuracy_vs_gold"]
    assert _files(two) == _files(one)


def test_killed_two_process_inform_run_resumes_to_the_same_numbers(pair_files, tmp_path):
    """Rank 1 reseeds its bottleneck noise every step (`train_rm.reseed_rank_noise`), so the
    checkpoint's one generator state (rank 0's) is all a resume needs."""
    args = [*RM, *pair_files, "train.batch_size=16", "inform.enabled=true"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _run2([*args, "--out", str(whole)])
    _kill_at_first_checkpoint([*args, "--out", str(killed)],
                              killed / "rm_seed1" / "checkpoints" / "latest")  # fmt: skip
    _run2([*args, "--out", str(killed), "--resume"])
    rows = _metrics(killed / "rm_seed1" / "metrics.jsonl")
    assert len(rows) == 8 and "loss/ib_kl" in rows[-1]
    assert rows == _metrics(whole / "rm_seed1" / "metrics.jsonl")


def test_a_single_process_command_under_a_launcher_is_refused(monkeypatch, capsys) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["bon", "--config", "smoke", "--out", "never"]) == 2
    err = capsys.readouterr().err.strip()
    assert "goodhart bon runs in one process" in err and "sft, train-rm" in err
    assert "\n" not in err and not Path("never").exists()


def test_a_numbered_gpu_under_a_launcher_is_refused(monkeypatch, capsys, tmp_path) -> None:
    """device=cuda:0 would load every rank onto GPU 0 (and join over gloo): one line, no dir."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "r"
    assert main(["sft", "--config", "smoke", "device=cuda:0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "goodhart sft: error: field 'device': cuda:0 would put all 2 processes on one GPU; use "
        "device=auto or cuda (each process takes GPU LOCAL_RANK) and pick GPUs with "
        "CUDA_VISIBLE_DEVICES"
    )
    assert not out.exists()


# PPO: greedy rollouts (temperature 0) draw no random numbers, so the 2 ranks sample the rows one
# process samples for the doubled batch; with temperature > 0 each rank has its own stream
# (docs/scale.md), so only the all-reduce and the writes are comparable.
PPO_KEYS = ("reward/train", "reward/gold", "reward/proxy", "length/mean", "kl/k3",
            "loss/policy", "loss/value", "ppo/approx_kl", "ppo/grad_norm", "eval/reward/proxy",
            "eval/reward/gold", "eval/kl/k3", "eval/length/mean")  # fmt: skip
# The CLI under torchrun, saving each rank's policy and value parameters after the last
# iteration (before rank 0 saves the model) to DUMP/rank{r}.safetensors.
SPY = """
import sys
from safetensors.torch import save_file
from goodhartlab.cli import main
from goodhartlab.recipes import ppo
from goodhartlab.runs import distributed

loop = ppo.train_loop
def spy(cfg, state, *args):
    loop(cfg, state, *args)
    value = state.value_head if state.value_head is not None else state.value_model
    named = [*state.policy.named_parameters(), *(("v." + n, p) for n, p in value.named_parameters())]
    tensors = {n: p.detach().clone().contiguous() for n, p in named}
    save_file(tensors, sys.argv[1] + f"/rank{distributed.rank()}.safetensors")
ppo.train_loop = spy
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def ppo_args(tiny_ppo_models, ppo_smoke_args):
    """`args(out, batch, *extra)`: greedy smoke PPO on the tiny models, `batch` prompts per
    process."""

    def args(out: Path, batch: int, *extra: str) -> list[str]:
        per_process = [f"ppo.prompts_per_iteration={batch}", f"ppo.minibatch_size={batch // 2}"]
        return ppo_smoke_args(
            out, tiny_ppo_models, "generation.temperature=0", *per_process, *extra
        )

    return args


@pytest.fixture(scope="module")
def ppo_runs(tmp_path_factory, ppo_args):
    base = tmp_path_factory.mktemp("ppo")
    one, two, dump = base / "one", base / "two", base / "dump"
    assert main(ppo_args(one, 16)) == 0
    (base / "spy.py").write_text(SPY)
    dump.mkdir()
    spy = _torchrun([str(dump), *ppo_args(two, 8)], target=(str(base / "spy.py"),))
    done = subprocess.run(spy, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("ppo: 4/4") == 1  # rank 0's progress only
    return one, two, dump


def test_ppo_ranks_end_with_identical_parameters(ppo_runs, tiny_ppo_models) -> None:
    """The gradients were all-reduced: both ranks hold bit-identical weights, which trained."""
    _, _, dump = ppo_runs
    rank0 = load_file(str(dump / "rank0.safetensors"))
    rank1 = load_file(str(dump / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys() and len(rank0) > 10
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    start = load_file(str(tiny_ppo_models / "policy" / "model.safetensors"))
    shared = [k for k in rank0 if k in start]  # named_parameters lists a tied weight once
    assert len(shared) > 10
    assert not [k for k in shared if torch.equal(start[k], rank0[k])]


def test_ppo_two_processes_equal_one_process_with_twice_the_batch(ppo_runs) -> None:
    one, two, _ = ppo_runs
    rows = _metrics(two / "metrics.jsonl")
    assert len(rows) == 5  # the step-0 evaluation and 4 iterations, logged once (rank 0)
    _assert_close_metrics(rows, _metrics(one / "metrics.jsonl"), PPO_KEYS)
    _assert_close_weights(two / "model", one / "model")
    samples = json.loads((two / "eval" / "eval-4.json").read_text())
    reference = json.loads((one / "eval" / "eval-4.json").read_text())
    assert len(samples) == len(reference) == 16
    for ours, theirs in zip(samples, reference):  # the same answers; scores within float noise
        assert ours.keys() == theirs.keys()
        for key, value in ours.items():
            if key in ("proxy_scores", "kl", "kl_list"):
                assert value == pytest.approx(theirs[key], rel=1e-4, abs=1e-5), key
            else:
                assert value == theirs[key], key
    assert _files(two) == _files(one)  # rank 1 wrote nothing of its own


def test_killed_two_process_ppo_resumes_to_the_same_numbers(ppo_runs, ppo_args, tmp_path):
    _, two, _ = ppo_runs
    out = tmp_path / "killed"
    _kill_at_first_checkpoint(ppo_args(out, 8), out / "checkpoints" / "latest")
    assert not (out / "ppo_summary.json").exists()
    _run2([*ppo_args(out, 8), "--resume"])
    assert _metrics(out / "metrics.jsonl") == _metrics(two / "metrics.jsonl")
    _assert_close_weights(out / "model", two / "model")


def test_rank_zeros_early_stop_ends_both_processes(ppo_args, tmp_path) -> None:
    """Only rank 0 evaluates and flags; its decision reaches rank 1, which stops too (a rank
    left waiting would hang the launcher), and the kept iteration-1 policy is saved."""
    out = tmp_path / "stop"
    extra = ["eval.every=1", "checkpoint_every=1", "detect.warmup=2",
             "detect.thresholds.length=-1e9", "early_stop.on=length"]  # fmt: skip
    _run2(ppo_args(out, 8, *extra))
    assert [r["step"] for r in _metrics(out / "metrics.jsonl")] == [0, 1, 2]
    summary = json.loads((out / "ppo_summary.json").read_text())
    assert (summary["early_stopped_at"], summary["saved_policy_step"]) == (2, 1)
    saved = load_file(str(out / "model" / "model.safetensors"))
    kept = load_file(str(out / "checkpoints" / "step_1" / "model.safetensors"))
    assert all(torch.equal(saved[k], kept[k]) for k in kept)


def test_ppo_vllm_rollouts_under_a_launcher_are_refused(monkeypatch) -> None:
    """Where vLLM could run (here faked), several processes with its engine are one line."""
    from goodhartlab.config.ppo_schema import PPOConfig, RolloutGenerationConfig
    from goodhartlab.errors import ConfigError
    from goodhartlab.recipes import ppo

    monkeypatch.setattr(ppo, "check_available", lambda backend, key: None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = PPOConfig(generation=RolloutGenerationConfig(backend="vllm"))
    with pytest.raises(ConfigError, match="vllm rollouts run in one process \\(WORLD_SIZE=2\\)"):
        ppo.check_config(cfg)
    monkeypatch.setenv("WORLD_SIZE", "1")
    ppo.check_config(cfg)  # one process: accepted


DEEPSPEED = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None,
    reason="deepspeed is not installed (pip install 'goodhartlab[deepspeed]', DS_BUILD_OPS=0)",
)
ZERO3 = "deepspeed_zero3_cpu_2proc.yaml"
NO_CHECKPOINTS = "train.checkpoint_every=1000"  # DeepSpeed runs write none


@DEEPSPEED
def test_deepspeed_zero3_sft_equals_one_process_with_twice_the_batch(sft_runs, tmp_path):
    one, _ = sft_runs
    out = tmp_path / "zero3"
    stderr = _run2([*SFT, "--out", str(out), "train.batch_size=8", NO_CHECKPOINTS], ZERO3)
    assert "deepspeed (ZeRO-3, 2 processes): rank 0 holds AdamW state for 55,744 of 111,488" in (
        stderr
    )
    _assert_close_metrics(_metrics(out / "metrics.jsonl"), _metrics(one / "metrics.jsonl"),
                          ("loss/train", "loss/eval", "lr"))  # fmt: skip
    _assert_close_weights(out / "model", one / "model")  # gathered on rank 0: a plain HF model
    assert _files(out) == [f for f in _files(one) if not f.startswith("checkpoints/")]


@DEEPSPEED
def test_deepspeed_zero2_train_rm_equals_one_process_with_twice_the_batch(
    pair_files, rm_one, tmp_path
):
    out = tmp_path / "zero2"
    args = [*RM, *pair_files, "--out", str(out), "train.batch_size=16", NO_CHECKPOINTS]
    stderr = _run2(args, f"{ZERO3} --zero_stage 2")
    assert "deepspeed (ZeRO-2, 2 processes): rank 0 holds AdamW state for" in stderr
    rows = _metrics(out / "rm_seed1" / "metrics.jsonl")
    _assert_close_metrics(rows, _metrics(rm_one / "rm_seed1" / "metrics.jsonl"),
                          ("loss/total", "rm/train_accuracy"))  # fmt: skip
    _assert_close_weights(out / "rm_seed1" / "model", rm_one / "rm_seed1" / "model")


@DEEPSPEED
def test_deepspeed_with_checkpoints_is_refused_in_one_line(tmp_path) -> None:
    out = tmp_path / "refused"
    stderr = _run2([*SFT, "--out", str(out), "train.batch_size=8"], ZERO3, returncode=1)
    lines = [x for x in stderr.splitlines() if x.startswith("goodhart sft: error:")]
    assert lines and "DeepSpeed runs write no goodhart checkpoints and cannot --resume" in lines[0]
    assert not out.exists()
