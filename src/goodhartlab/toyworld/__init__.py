"""The built-in toy world (DESIGN.md §3): a synthetic instruction task with a known gold reward.

Public API: `gold_reward(prompts, responses)`, `make(out_dir, spec)`, `ToyWorldSpec`.
"""

from goodhartlab.toyworld.gold import breakdown, gold_reward, parse_prompt
from goodhartlab.toyworld.world import ToyWorldSpec, make, teacher_stats

__all__ = ["ToyWorldSpec", "breakdown", "gold_reward", "make", "parse_prompt", "teacher_stats"]
