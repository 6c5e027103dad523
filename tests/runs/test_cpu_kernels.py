"""Portable CPU kernels: training gives the same bits whatever the CPU's instruction sets.

A machine without AVX-512 is emulated on this one by capping each library's dispatch at AVX2
(ATen, oneDNN, MKL): with the portable kernels the weights must not change; with torch's native
choice they do (on an AVX-512 CPU), which is the cross-machine drift issue 13 found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from goodhartlab.errors import ConfigError
from goodhartlab.runs import cpu_kernels

# a few AdamW steps of a tiny GPT-NeoX: matmuls, layer norm, softmax, GELU, their backward
TRAIN_PROBE = """
import hashlib
from goodhartlab.runs.cpu_kernels import pin_cpu_kernels
print(pin_cpu_kernels())
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
torch.set_num_threads(1)
torch.manual_seed(0)
cfg = GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=32)
model = GPTNeoXForCausalLM(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
x = torch.randint(0, 64, (16, 12), generator=torch.Generator().manual_seed(1))
for _ in range(5):
    loss = model(input_ids=x, labels=x).loss
    opt.zero_grad()
    loss.backward()
    opt.step()
print(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest())
"""
# what a CPU without AVX-512 would choose, forced on this one
AVX2_MACHINE = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
KERNEL_VARIABLES = (
    *AVX2_MACHINE,
    *cpu_kernels.PORTABLE_ENV,
    cpu_kernels.MODE_VARIABLE,
)


def probe(mode: str, extra: dict[str, str]) -> tuple[str, str]:
    """(mode in force, weight hash) of the probe in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES}
    env.update({cpu_kernels.MODE_VARIABLE: mode, "OMP_NUM_THREADS": "1", **extra})
    out = subprocess.run(
        [sys.executable, "-c", TRAIN_PROBE], env=env, capture_output=True, text=True, check=True
    )
    in_force, digest = out.stdout.split()
    return in_force, digest


def has_avx512() -> bool:
    try:
        return " avx512f " in f" {Path('/proc/cpuinfo').read_text()} "
    except OSError:
        return False


needs_avx2 = pytest.mark.skipif(not cpu_kernels.cpu_has_avx2(), reason="no AVX2 x86 CPU")


@needs_avx2
def test_portable_kernels_give_the_same_weights_on_an_avx2_only_machine() -> None:
    here = probe("portable", {})
    avx2_machine = probe("portable", AVX2_MACHINE)
    assert here[0] == "portable"
    assert here == avx2_machine


@pytest.mark.skipif(not has_avx512(), reason="the drift needs an AVX-512 CPU to show")
def test_native_kernels_drift_between_avx512_and_avx2_machines() -> None:
    """The cause, kept visible: without the pin the same seed trains other weights."""
    native = probe("native", {})
    assert native[0] == "native"
    assert native[1] != probe("native", AVX2_MACHINE)[1]


def test_a_bad_mode_is_one_line(monkeypatch) -> None:
    monkeypatch.setenv(cpu_kernels.MODE_VARIABLE, "fast")
    with pytest.raises(
        ConfigError,
        match=r"\$GOODHART_CPU_KERNELS='fast': bad choice \(allowed: portable, native\)",
    ):
        cpu_kernels.kernel_mode()


def test_avx2_detection_reads_the_cpu_flags(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cpu_kernels.platform, "machine", lambda: "x86_64")
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert cpu_kernels.cpu_has_avx2(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx\n")
    assert not cpu_kernels.cpu_has_avx2(info)
    monkeypatch.setattr(cpu_kernels.platform, "machine", lambda: "aarch64")
    info.write_text("flags\t\t: avx2 fma\n")
    assert not cpu_kernels.cpu_has_avx2(info)


def test_a_native_machine_keeps_its_own_cache(monkeypatch) -> None:
    """Models built with machine-specific kernels never stand in for the portable ones."""
    from goodhartlab.recipes.toy_inputs import CACHE_VERSION, cache_tag

    monkeypatch.setenv(cpu_kernels.MODE_VARIABLE, "native")
    assert cache_tag() == f"v{CACHE_VERSION}-native"
    monkeypatch.setenv(cpu_kernels.MODE_VARIABLE, "portable")
    expected = f"v{CACHE_VERSION}" if cpu_kernels.cpu_has_avx2() else f"v{CACHE_VERSION}-native"
    assert cache_tag() == expected
