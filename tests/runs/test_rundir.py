"""Run directories: config first, refusal to clobber, resume checks, metrics, atomic writes."""

import json

import pytest

from goodhartlab.errors import GoodhartError, InputError
from goodhartlab.runs import RunDir, atomic_write_json
from goodhartlab.runs.atomic import atomic_directory


def test_prepare_writes_config_and_refuses_reuse(tmp_path) -> None:
    run = RunDir.prepare(tmp_path / "r", "a: 1\n")
    assert (tmp_path / "r" / "config.yaml").read_text() == "a: 1\n"
    run.log(1, {"loss": 0.5, "bad": float("nan")})
    with pytest.raises(GoodhartError, match="not empty; pass --resume"):
        RunDir.prepare(tmp_path / "r", "a: 1\n")
    with pytest.raises(GoodhartError, match="saved config differs"):
        RunDir.prepare(tmp_path / "r", "a: 2\n", resume=True)
    again = RunDir.prepare(tmp_path / "r", "a: 1\n", resume=True)
    assert again.read_metrics() == [{"step": 1, "loss": 0.5, "bad": None}]
    with pytest.raises(InputError, match="nothing to resume"):
        RunDir.prepare(tmp_path / "empty", "a: 1\n", resume=True)


def test_metrics_truncation_and_checkpoint_rotation(tmp_path) -> None:
    run = RunDir.prepare(tmp_path / "r", "x: 1\n")
    for step in range(1, 6):
        run.log(step, {"v": step})
    run.truncate_metrics_after(3)
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3]
    for step in (10, 20, 30):
        run.checkpoint_dir(step).mkdir(parents=True)
        run.mark_latest(step, keep=2)
    assert run.latest_checkpoint() == run.checkpoint_dir(30)
    assert sorted(p.name for p in run.checkpoints.glob("step_*")) == ["step_20", "step_30"]


def test_atomic_writes_leave_nothing_on_failure(tmp_path) -> None:
    atomic_write_json(tmp_path / "x.json", {"a": float("inf")})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None}
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "d") as tmp:
        (tmp / "half.bin").write_text("partial")
        raise RuntimeError("killed")
    assert not (tmp_path / "d").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_resume_truncation_repairs_metrics(tmp_path, capsys) -> None:
    run = RunDir.prepare(tmp_path / "r", "x: 1\n")
    for step in range(0, 4):
        run.log(step, {"v": step})
    path = run.file("metrics.jsonl")
    good = path.read_text()
    path.write_text(good + '{"step": 4, "v"')  # torn tail (killed mid-write, disk full)
    assert [r["step"] for r in run.read_metrics()] == [0, 1, 2, 3]
    run.truncate_metrics_after(2)
    assert "dropped a torn last line" in capsys.readouterr().out
    assert path.read_text() == "".join(good.splitlines(keepends=True)[:3])
    run.truncate_metrics_after(None)  # killed before the first checkpoint: start over
    assert path.read_text() == ""
    path.write_text('{"step": 0}\nnot json\n{"step": 2}\n')  # damage inside: name the line
    with pytest.raises(InputError, match=r"metrics.jsonl:2: not a metrics row"):
        run.truncate_metrics_after(2)
