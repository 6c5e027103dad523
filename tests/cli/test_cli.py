"""The CLI contract: instant help, strict configs, one-line errors, nothing half-written."""

import json
import subprocess
import sys
import time

import pytest

from goodhartlab.cli import main


def _goodhart(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "goodhartlab", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _help_in_fresh_python(calls: str, modules: tuple[str, ...]) -> str:
    """stdout of `calls` (main(...) calls) in a new interpreter, then 'HEAVY [...]': which of
    `modules` they imported."""
    code = (
        f"import sys; from goodhartlab.cli import main; {calls}; "
        f"print('HEAVY', [m for m in {modules!r} if m in sys.modules])"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout


def test_help_is_instant_and_light() -> None:
    out = _help_in_fresh_python(
        "main(['--help'])", ("torch", "transformers", "matplotlib", "gymnasium")
    )
    assert "sft" in out and "toyworld" in out and "validate" in out
    assert "HEAVY []" in out
    start = time.perf_counter()
    assert _goodhart("--help").returncode == 0
    assert time.perf_counter() - start < 5  # whole interpreter start; the import itself is < 1 s


def test_short_form_commands_help_imports_no_recipe() -> None:
    """score and evaluate latents rewrite their repeated flags before parsing; that took
    importing the recipe (numpy; torch and transformers for latents, 4.5 s) even for --help."""
    out = _help_in_fresh_python(
        "main(['score', '--help']); main(['evaluate', 'latents', '--help'])",
        ("numpy", "torch", "transformers", "goodhartlab.recipes.score",
         "goodhartlab.recipes.evaluate_latents"),
    )  # fmt: skip
    assert "goodhart score:" in out and "goodhart evaluate-latents:" in out
    assert "HEAVY []" in out


def test_command_help_lists_fields(capsys) -> None:
    assert main(["sft", "--help"]) == 0
    out = capsys.readouterr().out
    assert "optim.lr = 0.003" in out and "model.source = toy:policy" in out


def test_validate_ok_and_bad_key(tmp_path, capsys) -> None:
    assert main(["validate", "sft", "--config", "smoke", "train.epochs=3"]) == 0
    assert "epochs: 3" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\ntrain:\n  epochz: 3\n")
    assert main(["validate", "sft", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bad.yaml:3" in err and "train.epochz" in err and "epochs" in err
    assert main(["sft", "--config", "nosuchpreset", "--out", str(tmp_path / "x")]) == 2
    assert "smoke" in capsys.readouterr().err  # lists the available presets
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"prompt": "list one fruits", "completion": "apple"}\n{"prompt": oops}\n', ":2"),
        ('{"prompt": "list one fruits", "completion": "apple"}\n{"prompt": "x"}\n', "completion"),
        ("", "no rows"),
    ],
)
def test_bad_data_one_line_nonzero_nothing_written(tmp_path, content, expected) -> None:
    data = tmp_path / "demos.jsonl"
    data.write_text(content)
    out = tmp_path / "run"
    proc = _goodhart("sft", "--config", "smoke", f"data.train={data}", "--out", str(out))
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert "demos.jsonl" in err[0] and expected in err[0]
    assert not out.exists()


def test_missing_model_dir(tmp_path) -> None:
    out = tmp_path / "run"
    proc = _goodhart(
        "sft", "--config", "smoke", f"model.source={tmp_path / 'missing'}", "--out", str(out)
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("missing: model directory not found")
    assert not out.exists()


def test_toyworld_command(tmp_path) -> None:
    out = tmp_path / "world"
    proc = _goodhart("toyworld", "--config", "smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "r(length, gold) = +0." in proc.stdout and "r(fillers, gold) = +0." in proc.stdout
    rows = (out / "demos_train.jsonl").read_text().splitlines()
    assert len(rows) == 2000 and set(json.loads(rows[0])) == {"prompt", "completion"}
    assert (out / "config.yaml").exists() and (out / "tokenizer" / "tokenizer.json").exists()
