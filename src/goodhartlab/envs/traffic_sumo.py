"""SUMO plumbing of the traffic env: the merge network, the SUMO connection, one simulation.

Why a module of its own: `envs/traffic.py` holds the task (spaces, rewards, the IDM controller);
this holds what talks to SUMO, so the task reads without TraCI details and the import of SUMO
stays in one place (`load_sumo`), where its absence becomes one line naming the extra.

Backends: `libsumo` runs SUMO inside this Python process (no socket; about 10x fewer microseconds
per call) but allows ONE simulation per process; `traci` starts a `sumo` binary per simulation and
talks to it over a local socket, so any number can live in one process. `backend="auto"` takes
libsumo for the first simulation of a process and traci for the others.

The network (specs/orpo.md §2.2, Flow's `MergeNetwork` with the fork's lengths): a 1-lane
highway `inflow_highway` (50 m) -> `left` (pre-merge, 100 m) -> `center` (post-merge, 75 m), and
a 1-lane ramp `inflow_merge` (50 m) -> `bottom` (merge, 50 m) joining at node `center` at 45
degrees; speed limit 30 m/s. netconvert builds it at run time into a per-process temporary
directory, once per geometry.

The merge junction (`MergeGeometry.merge_junction`). Flow's MergeNetwork gives netconvert no node
type and no edge priorities, and drives every vehicle with speed mode 1 ("obey_safe_speed"),
which disregards right of way: at the merge, vehicles just follow whoever is ahead, so both
streams enter and the ramp's merging vehicles slow the highway (the waves Flow's merge benchmark
is about). SUMO checks collisions inside junctions here, so ignoring right of way crashes within
seconds; the two SUMO junctions that keep the merge collision-free behave as follows (one
300-step IDM episode, measured, see docs/orpo.md):
* "zipper" (default): the two lanes take turns, Flow's "both streams merge"; the highway queues
  behind merging ramp vehicles (~3.5 m/s), and buses that stop on the ramp let it flow (~14 m/s)
  while the stopped bus stays in the network at speed 0: the spec's hack.
* "priority": the highway (edge priority 2) is the main road and the ramp (1) yields. The
  highway's demand (7500 veh/h) exceeds its capacity, so it never leaves the ramp a gap: the
  ramp stands still from the start, whatever the buses do.
netconvert's default (equal priorities) made the 45-degree ramp the main road and jammed the
highway behind it; that is why the edges now carry explicit priorities.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goodhartlab.errors import GoodhartError

INSTALL_HINT = "pip install 'goodhartlab[traffic]'"
HUMAN_MIN_GAP = 2.0  # IDM s0 (m); SUMO's leader gap excludes the follower's minGap
RL_SPEED_MODE = 1  # Flow's "obey_safe_speed": commanded accelerations are capped by safe speed


HIGHWAY_PRIORITY, RAMP_PRIORITY = 2, 1  # netconvert edge priorities: the highway is the main road
MERGE_JUNCTIONS = ("zipper", "priority")


class MissingSumoError(GoodhartError, ImportError):
    """SUMO (the `[traffic]` extra) is not installed."""


@dataclass(frozen=True)
class MergeGeometry:
    """Lengths (m), speed limit (m/s) and inflows (veh/h) of the merge scenario (spec §2.2)."""

    pre_merge: float = 100.0
    post_merge: float = 75.0
    inflow_edge: float = 50.0
    merge: float = 50.0
    speed_limit: float = 30.0
    highway_flow: float = 7500.0
    ramp_human_flow: float = 337.5
    ramp_bus_flow: float = 112.5
    highway_depart_speed: float = 10.0
    ramp_depart_speed: float = 7.5
    merge_junction: str = "zipper"  # netconvert node type of `center` (module docstring)


def load_sumo(backend: str) -> Any:
    """Import the SUMO Python module for `backend` ('libsumo' or 'traci'), or raise one line.

    libsumo prints a pyarrow version warning on import (we write no parquet output), so its
    stdout is swallowed.
    """
    try:
        if backend == "libsumo":
            with contextlib.redirect_stdout(io.StringIO()):
                import libsumo
            return libsumo
        import sumo  # noqa: F401  (the binaries; sets SUMO_HOME)
        import traci

        return traci
    except ImportError as err:
        raise MissingSumoError(
            f"goodhartlab/Traffic-v0 needs SUMO ({err.name or err} is missing): {INSTALL_HINT}"
        ) from None


def sumo_binary(name: str) -> str:
    """Path of a SUMO executable from the eclipse-sumo wheel (or $SUMO_HOME/bin)."""
    try:
        import sumo
    except ImportError:
        raise MissingSumoError(f"goodhartlab/Traffic-v0 needs SUMO: {INSTALL_HINT}") from None
    for home in (sumo.SUMO_HOME, os.environ.get("SUMO_HOME", "")):
        path = Path(home) / "bin" / name
        if path.exists():
            return str(path)
    raise MissingSumoError(f"no '{name}' executable in the SUMO install: {INSTALL_HINT}")


def _nodes_edges(g: MergeGeometry) -> tuple[str, str]:
    """Flow's MergeNetwork nodes and edges as netconvert plain XML."""
    if g.merge_junction not in MERGE_JUNCTIONS:
        raise ValueError(
            f"merge_junction must be one of {MERGE_JUNCTIONS}, got {g.merge_junction!r}"
        )
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    nodes = {
        "inflow_highway": (-g.inflow_edge, 0.0),
        "left": (0.0, 0.0),
        "center": (g.pre_merge, 0.0),
        "right": (g.pre_merge + g.post_merge, 0.0),
        "inflow_merge": (
            g.pre_merge - (g.merge + g.inflow_edge) * c,
            -(g.merge + g.inflow_edge) * s,
        ),
        "bottom": (g.pre_merge - g.merge * c, -g.merge * s),
    }
    edges = [  # (id, from, to, priority): the highway outranks the ramp at node `center`
        ("inflow_highway", "inflow_highway", "left", HIGHWAY_PRIORITY),
        ("left", "left", "center", HIGHWAY_PRIORITY),
        ("center", "center", "right", HIGHWAY_PRIORITY),
        ("inflow_merge", "inflow_merge", "bottom", RAMP_PRIORITY),
        ("bottom", "bottom", "center", RAMP_PRIORITY),
    ]
    types = {"center": g.merge_junction}
    nod = "".join(
        f'<node id="{n}" x="{x:.3f}" y="{y:.3f}" type="{types.get(n, "priority")}"/>'
        for n, (x, y) in nodes.items()
    )
    edg = "".join(
        f'<edge id="{e}" from="{a}" to="{b}" numLanes="1" speed="{g.speed_limit}" priority="{p}"/>'
        for e, a, b, p in edges
    )
    return f"<nodes>{nod}</nodes>", f"<edges>{edg}</edges>"


def _routes(g: MergeGeometry) -> str:
    """Vehicle types, the two routes and the three inflows (humans: SUMO's IDM; buses: the
    controlled vehicles, IDM when not commanded)."""
    idm = 'carFollowModel="IDM" accel="1" decel="1.5" tau="1" delta="4" speedDev="0"'
    types = (
        f'<vType id="human" {idm} minGap="{HUMAN_MIN_GAP}" maxSpeed="{g.speed_limit}"/>'
        f'<vType id="bus" {idm} minGap="{HUMAN_MIN_GAP}" maxSpeed="{g.speed_limit}"/>'
    )
    routes = (
        '<route id="highway" edges="inflow_highway left center"/>'
        '<route id="ramp" edges="inflow_merge bottom center"/>'
    )
    flows = [
        ("highway", "human", "highway", g.highway_flow, g.highway_depart_speed),
        ("ramp", "human", "ramp", g.ramp_human_flow, g.ramp_depart_speed),
        ("bus", "bus", "ramp", g.ramp_bus_flow, g.ramp_depart_speed),
    ]
    flow_xml = "".join(
        f'<flow id="{fid}" type="{t}" route="{r}" begin="0" end="100000" vehsPerHour="{rate}" '
        f'departSpeed="{speed}" departLane="free"/>'
        for fid, t, r, rate, speed in flows
        if rate > 0
    )
    return f"<routes>{types}{routes}{flow_xml}</routes>"


_NET_DIR: Path | None = None
_NETS: dict[MergeGeometry, tuple[str, str]] = {}


def network_files(g: MergeGeometry) -> tuple[str, str]:
    """(net.xml, rou.xml) for the geometry, built once per process with netconvert."""
    global _NET_DIR
    if g in _NETS:
        return _NETS[g]
    if _NET_DIR is None:
        _NET_DIR = Path(tempfile.mkdtemp(prefix="goodhart_traffic_"))
        atexit.register(shutil.rmtree, _NET_DIR, True)
    stem = _NET_DIR / f"merge{len(_NETS)}"
    nod, edg = _nodes_edges(g)
    Path(f"{stem}.nod.xml").write_text(nod)
    Path(f"{stem}.edg.xml").write_text(edg)
    Path(f"{stem}.rou.xml").write_text(_routes(g))
    cmd = [sumo_binary("netconvert"), "--node-files", f"{stem}.nod.xml", "--edge-files"]
    cmd += [f"{stem}.edg.xml", "-o", f"{stem}.net.xml", "--no-turnarounds", "--no-warnings"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"netconvert failed: {done.stderr.strip()}")
    _NETS[g] = (f"{stem}.net.xml", f"{stem}.rou.xml")
    return _NETS[g]


_LIBSUMO_TAKEN = False


def pick_backend(backend: str) -> str:
    """Resolve 'auto': libsumo while this process has no libsumo simulation, else traci."""
    global _LIBSUMO_TAKEN
    if backend == "auto":
        backend = "traci" if _LIBSUMO_TAKEN else "libsumo"
    if backend not in ("libsumo", "traci"):
        raise ValueError(f"backend must be 'auto', 'libsumo' or 'traci', got {backend!r}")
    if backend == "libsumo":
        if _LIBSUMO_TAKEN:
            raise RuntimeError("libsumo runs one simulation per process; use backend='traci'")
        _LIBSUMO_TAKEN = True
    return backend


def release_backend(backend: str) -> None:
    global _LIBSUMO_TAKEN
    if backend == "libsumo":
        _LIBSUMO_TAKEN = False


class SumoConnection:
    """One running SUMO simulation behind the TraCI API (a libsumo module or a traci Connection).

    `load(seed)` (re)starts the scenario from t = 0, so every episode is a fresh simulation.
    """

    _count = 0

    def __init__(self, geometry: MergeGeometry, sim_step: float, backend: str = "auto") -> None:
        self.backend = pick_backend(backend)
        try:
            self.module = load_sumo(self.backend)
        except MissingSumoError:
            release_backend(self.backend)
            raise
        self.geometry, self.sim_step = geometry, sim_step
        self.net_file, self.route_file = network_files(geometry)
        self.api: Any = None
        SumoConnection._count += 1
        self.label = f"goodhart{os.getpid()}_{SumoConnection._count}"

    def _args(self, seed: int) -> list[str]:
        return [
            *("-n", self.net_file, "-r", self.route_file, "--step-length", str(self.sim_step)),
            *("--seed", str(seed), "--time-to-teleport", "-1", "--collision.action", "warn"),
            *("--collision.check-junctions", "true", "--no-step-log", "true"),
            *("--no-warnings", "true", "--duration-log.disable", "true"),
        ]

    def load(self, seed: int) -> Any:
        """Start (first call) or reload the simulation at t = 0 with `seed`; returns the API."""
        args = self._args(seed)
        if self.api is None:
            cmd = [sumo_binary("sumo"), *args]
            if self.backend == "libsumo":
                self.module.start(cmd)
                self.api = self.module
            else:
                self.module.start(cmd, label=self.label)
                self.api = self.module.getConnection(self.label)
        else:
            self.api.load(args)
        return self.api

    def close(self) -> None:
        if self.api is not None:
            with contextlib.suppress(Exception):
                self.api.close()
            self.api = None
        if self.backend:
            release_backend(self.backend)
            self.backend = ""
