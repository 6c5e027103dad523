"""`runs.distributed`'s arithmetic without launching processes: how a batch is split over ranks,
which batches a multi-process epoch has, and where reductions run (NCCL reduces only CUDA
tensors). The launched runs are in test_distributed.py."""

from __future__ import annotations

import pytest
import torch

from goodhartlab.errors import ConfigError
from goodhartlab.recipes.sft import batch_order
from goodhartlab.runs import distributed


def _shards(monkeypatch, n: int, world: int) -> list[list[int]]:
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setenv("WORLD_SIZE", str(world))
    out = []
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        out.append(distributed.shard(range(n)))
    return out


def test_shards_are_contiguous_balanced_and_never_empty(monkeypatch) -> None:
    # ceil-sized slices gave 5 rows on 4 ranks as 2, 2, 1, 0: rank 3's forward had no input
    assert _shards(monkeypatch, 5, 4) == [[0, 1], [2], [3], [4]]
    assert _shards(monkeypatch, 16, 2) == [list(range(8)), list(range(8, 16))]  # as before
    for n in range(4, 40):
        parts = _shards(monkeypatch, n, 4)
        assert [i for p in parts for i in p] == list(range(n))  # in the global batch's order
        assert max(map(len, parts)) - min(map(len, parts)) <= 1 and min(map(len, parts)) >= 1


def test_an_epochs_tail_shorter_than_the_process_count_joins_the_batch_before() -> None:
    one = batch_order(9, 8, 2, seed=0)
    assert [len(b) for b in one] == [8, 1, 8, 1]  # one process: unchanged
    four = batch_order(9, 8, 2, seed=0, processes=4)
    assert [len(b) for b in four] == [9, 9]  # a 1-row tail would leave 3 ranks without rows
    assert four == [one[0] + one[1], one[2] + one[3]]  # the same examples, in the same order
    assert [len(b) for b in batch_order(12, 8, 1, seed=0, processes=4)] == [8, 4]


def test_fewer_examples_than_processes_is_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        batch_order(3, 8, 1, seed=0, processes=4)
    assert str(err.value) == (
        "3 training examples cannot be split over 4 processes (each needs at least one); "
        "use more data or fewer processes"
    )


def test_reductions_run_on_the_gpu_under_nccl_and_on_cpu_under_gloo(monkeypatch) -> None:
    import torch.distributed as dist

    monkeypatch.setattr(dist, "get_backend", lambda *a: "nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert distributed.reduce_device() == torch.device("cuda", 1)
    monkeypatch.setattr(dist, "get_backend", lambda *a: "gloo")
    assert distributed.reduce_device() == torch.device("cpu")


def test_global_mean_and_sum_across_reduce_in_a_gloo_group(monkeypatch, tmp_path) -> None:
    """A one-rank group posing as 2 processes: the reductions really run (on CPU)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 's'}", rank=0, world_size=1)
    try:
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert distributed.active()
        assert distributed.global_mean(2.5, 4) == 2.5
        summed = distributed.sum_across({"a": 1.5, "b": torch.tensor(2.0)})
        assert {k: (float(v), v.dtype) for k, v in summed.items()} == {
            "a": (1.5, torch.float64),
            "b": (2.0, torch.float64),
        }
    finally:
        dist.destroy_process_group()


def test_ranks_after_0_draw_their_own_inform_noise_each_step(monkeypatch) -> None:
    """Every rank's bottleneck generator starts from the member's seed; ranks after 0 reseed per
    (step, rank), so their rows get other noise than rank 0's, the same again on a resume."""
    from goodhartlab.recipes.train_rm import reseed_rank_noise

    def draws(rank: int, step: int, world: int = 2) -> torch.Tensor:
        monkeypatch.setattr(distributed, "active", lambda: world > 1)
        monkeypatch.setenv("WORLD_SIZE", str(world))
        monkeypatch.setenv("RANK", str(rank))
        noise = torch.Generator().manual_seed(7)
        reseed_rank_noise(noise, 7, step)
        return torch.randn(4, generator=noise)

    member = torch.randn(4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(draws(0, 3), member) and torch.equal(draws(0, 3, world=1), member)
    assert not torch.equal(draws(1, 3), member)  # before: rank 1 repeated rank 0's noise
    assert torch.equal(draws(1, 3), draws(1, 3)) and not torch.equal(draws(1, 3), draws(1, 4))
    assert not torch.equal(draws(1, 3, world=3), draws(2, 3, world=3))
