"""`{seed}` placeholders in reward-model paths (the seeds' proxy_rm_path convention)."""

import pytest

from goodhartlab.config.seed_paths import expand_seeds, shared_seeds
from goodhartlab.errors import ConfigError


def test_placeholders_expand_in_seed_order_and_plain_paths_stay() -> None:
    paths = ["gold_rm", "runs/rm_seed{seed}/model"]
    assert expand_seeds(paths, [3, 1], "reward_models") == [
        "gold_rm", "runs/rm_seed3/model", "runs/rm_seed1/model",
    ]  # fmt: skip
    assert expand_seeds(["a", "b"], None, "reward_models") == ["a", "b"]
    assert expand_seeds(["m_{seed}_{seed}"], [2], "x") == ["m_2_2"]


def test_a_format_spec_is_a_placeholder_too() -> None:
    """`{seed:02d}` used to fail with "no path has a {seed} placeholder"."""
    assert expand_seeds(["rm_seed{seed:02d}", "g"], [1, 12], "f") == [
        "rm_seed01", "rm_seed12", "g",
    ]  # fmt: skip
    assert expand_seeds(["lit{{seed}}"], None, "f") == ["lit{seed}"]


@pytest.mark.parametrize(
    ("paths", "seeds", "message"),
    [
        (["rm{seed}"], None, "field 'f': 'rm{seed}' has a {seed} placeholder; set seeds=[1,2,...]"),
        (["rm"], [1], "field 'seeds': [1] given but no path in 'f' has a {seed} placeholder"),
        (["rm{seed}"], [1, 1], "field 'seeds': repeated seeds in [1, 1]"),
        (["rm{seed}"], [], "field 'seeds': empty list"),
        (["rm{seed}_{run}"], [1], "field 'f': 'rm{seed}_{run}': only {seed} (or a format spec"),
        (["rm{seed:02d}"], None, "field 'f': 'rm{seed:02d}' has a {seed} placeholder; set seeds"),
        (["rm{seed:.x}"], [1], "field 'f': 'rm{seed:.x}': only {seed} (or a format spec such as"),
        (["rm{seed"], [1], "field 'f': 'rm{seed': "),
    ],
)
def test_bad_patterns_are_one_line_config_errors(paths, seeds, message) -> None:
    with pytest.raises(ConfigError) as err:
        expand_seeds(paths, seeds, "f")
    assert str(err.value).startswith(message)


def test_a_second_list_takes_the_shared_seeds_only_where_it_has_a_placeholder() -> None:
    """ppo's detect.ensemble shares reward.seeds: a plain monitor ensemble beside a `{seed}`
    proxy used to fail with "seeds given but no path has a {seed} placeholder"."""
    assert shared_seeds(["mon/a", "mon/b"], [1, 2], "detect.ensemble") is None
    assert shared_seeds(["mon/rm{seed}"], [1, 2], "detect.ensemble") == [1, 2]
    assert shared_seeds(["lit{{seed}}"], [1], "detect.ensemble") is None


def test_ppo_names_detect_ensemble_in_its_placeholder_error(tmp_path, capsys) -> None:
    from goodhartlab.cli import main

    out = tmp_path / "R"
    rc = main(["ppo", "--config", "smoke", "detect.ensemble=['/x/rm_seed{seed}/model']",
               "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not out.exists()
    assert "field 'detect.ensemble': '/x/rm_seed{seed}/model' has a {seed} placeholder" in err
