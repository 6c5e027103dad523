"""Portable CPU kernels: the same seed and config give the same trained toy models on any x86 CPU.

Why: torch picks its CPU kernels per machine. ATen's vectorized ops dispatch on the best
instruction set (AVX-512 here, AVX2 on many laptops), oneDNN JIT-compiles matmuls for the CPU at
hand, and MKL chooses a code path per CPU. Each choice sums floats in another order; training
amplifies those last-bit differences, so the toy chain built on another machine gave other models
(issue 13: seed-1 RM accuracy vs gold 0.799 on one machine, 0.716 in our docs). Measured on an
AVX-512 machine: capping ATen at AVX2, or oneDNN at AVX2, each changes the smoke SFT weights.

The portable mode (the default) pins every choice that depends on the machine:
- ATen's dispatch at AVX2 (`ATEN_CPU_CAPABILITY=avx2`), which every x86 CPU of the last decade has;
- MKL's conditional numerical reproducibility at the AVX2 branch (`MKL_CBWR=AVX2`);
- oneDNN off (`torch.backends.mkldnn.enabled = False`), so matmuls go through MKL, whose results
  MKL_CBWR pins, rather than through kernels JIT-tuned to the CPU.
On the toy models this costs no measurable speed (docs/reproducibility.md has the figures).
`GOODHART_CPU_KERNELS=native` keeps torch's own choices (faster for large models on AVX-512 CPUs);
a variable the user already set is never overridden. It changes nothing on a GPU.

The environment variables must be set before torch first dispatches a CPU op, so the CLI calls
`pin_cpu_kernels()` before anything imports torch, and job workers inherit the variables.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from goodhartlab.errors import ConfigError

MODE_VARIABLE = "GOODHART_CPU_KERNELS"
MODES = ("portable", "native")
PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


def cpu_has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this x86 CPU has AVX2 and FMA (forcing AVX2 kernels on one without would crash)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = next(
            (line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), ""
        )
    except OSError:
        return False
    return {"avx2", "fma"} <= set(flags.split())


def kernel_mode() -> str:
    """The mode asked for by $GOODHART_CPU_KERNELS (default portable); a bad value is one line."""
    mode = os.environ.get(MODE_VARIABLE, "portable")
    if mode not in MODES:
        raise ConfigError(f"${MODE_VARIABLE}={mode!r}: bad choice (allowed: {', '.join(MODES)})")
    return mode


def kernels_in_force() -> str:
    """ "portable", or "native" where asked for or where there is nothing to pin (no AVX2 x86)."""
    return "portable" if kernel_mode() == "portable" and cpu_has_avx2() else "native"


def pin_cpu_kernels() -> str:
    """Apply the kernel mode to this process (and, through the environment, its children).

    Returns what is in force: "portable", or "native" (asked for, or not an AVX2 x86 CPU, where
    there is nothing to pin). Call it before torch runs any CPU op.
    """
    if kernels_in_force() == "native":
        return "native"
    for name, value in PORTABLE_ENV.items():
        os.environ.setdefault(name, value)
    import torch

    torch.backends.mkldnn.enabled = False
    asked = os.environ["ATEN_CPU_CAPABILITY"].upper()
    if torch.backends.cpu.get_cpu_capability() != asked:  # an op ran before us: too late
        print(
            f"goodhart: warning: CPU kernels were chosen before ${MODE_VARIABLE} could pin them; "
            "results may differ on other machines",
            file=sys.stderr,
        )
    return "portable"
