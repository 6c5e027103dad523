"""Strict config loading: every error kind names file:line (or override) and field, exactly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from goodhartlab.config import (
    FieldInfo,
    config_fields,
    config_to_dict,
    dump_config,
    find_configs_dir,
    load_config,
    resolve_config_path,
)
from goodhartlab.errors import ConfigError


@dataclass
class Train:
    batch_size: int = field(default=64, metadata={"help": "rows per step"})
    epochs: int = field(default=4, metadata={"help": "passes over the data"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate"})


@dataclass
class Regularizer:
    kind: Literal["none", "kl", "chi2", "sqrt_chi2"] = "none"
    coef: float = 0.1


@dataclass(frozen=True)
class Member:
    name: str = "rm"
    weight: float = 1.0


@dataclass
class Extra:
    seeds: list[int] = field(default_factory=lambda: [0])
    shape: tuple[int, ...] = (2, 3)
    pair: tuple[str, float] = ("a", 1.0)
    weights: dict[str, float] = field(default_factory=dict)
    name: str | None = None
    out: Path = Path("runs/x")
    flag: bool = False
    switch: Literal["on", "off"] = "on"
    level: Literal[1, 2, 3] = 1
    members: list[Member] = field(default_factory=list)
    either: int | str = 0


@dataclass
class Cfg:
    seed: int = field(default=0, metadata={"help": "random seed"})
    train: Train = field(default_factory=Train, metadata={"help": "loop"})
    regularizer: Regularizer = field(default_factory=lambda: Regularizer(kind="kl"))
    extra: Extra = field(default_factory=Extra)
    sub: Member | None = None


@dataclass
class Checked:
    warmup: int = 0
    total: int = 10

    def __post_init__(self) -> None:
        if self.warmup > self.total:
            raise ValueError("warmup: must be <= total")
        if self.total == 13:
            raise ValueError("total of 13 is unlucky")


@dataclass
class Outer:
    inner: Checked = field(default_factory=Checked)


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(cls, path, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(cls, path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- happy paths


def test_no_file_no_overrides_gives_defaults():
    assert load_config(Cfg, None) == Cfg()
    assert load_config(Cfg, None).regularizer.kind == "kl"  # default_factory's value kept


def test_yaml_subset_keeps_other_defaults(tmp_path):
    path = write(tmp_path, "train:\n  lr: 0.5\nregularizer:\n  coef: 2\n")
    cfg = load_config(Cfg, path)
    assert cfg.train == Train(batch_size=64, epochs=4, lr=0.5)
    # the section's default came from a default_factory (kind="kl"): a partial section keeps it
    assert cfg.regularizer == Regularizer(kind="kl", coef=2.0)
    assert isinstance(cfg.regularizer.coef, float)
    assert cfg.extra == Extra()


def test_empty_file_and_empty_section_keep_defaults(tmp_path):
    assert load_config(Cfg, write(tmp_path, "# nothing\n")) == Cfg()
    assert load_config(Cfg, write(tmp_path, "train:\n# all commented\n")) == Cfg()


def test_nested_overrides_apply_after_file_in_order(tmp_path):
    path = write(tmp_path, "train:\n  lr: 0.5\n  epochs: 2\n")
    cfg = load_config(Cfg, path, ["train.lr=1e-3", "regularizer.kind=chi2", "train.lr=0.25"])
    assert cfg.train == Train(lr=0.25, epochs=2)
    assert cfg.regularizer.kind == "chi2"


def test_override_mapping_merges_into_section():
    cfg = load_config(Cfg, None, ["train={epochs: 9}"])
    assert cfg.train == Train(epochs=9)


def test_collections_optional_literal_path(tmp_path):
    text = """
extra:
  seeds: [1, 2, 3]
  shape: [4]
  pair: [b, 2]
  weights: {a: 1, b: 0.5}
  name: run
  out: /tmp/out
  flag: yes
  switch: off
  level: 3
  members:
    - {name: x}
    - name: y
      weight: 2
  either: text
sub: {weight: 3}
"""
    cfg = load_config(Cfg, write(tmp_path, text))
    e = cfg.extra
    assert e.seeds == [1, 2, 3]
    assert e.shape == (4,) and isinstance(e.shape, tuple)
    assert e.pair == ("b", 2.0)
    assert e.weights == {"a": 1.0, "b": 0.5}
    assert e.name == "run"
    assert e.out == Path("/tmp/out") and isinstance(e.out, Path)
    assert e.flag is True
    assert e.switch == "off"  # YAML 1.1 reads `off` as false; a string Literal matches the text
    assert e.level == 3
    assert e.members == [Member("x", 1.0), Member("y", 2.0)]
    assert e.either == "text"
    assert cfg.sub == Member("rm", 3.0)  # an optional section set from None starts at defaults


def test_override_values_are_yaml():
    cfg = load_config(
        Cfg,
        None,
        ["extra.seeds=[1,2,3]", "extra.name=null", "extra.weights={k: 2}", "extra.either=5"],
    )
    assert cfg.extra.seeds == [1, 2, 3]
    assert cfg.extra.name is None
    assert cfg.extra.weights == {"k": 2.0}
    assert cfg.extra.either == 5
    assert load_config(Cfg, None, ["sub.name=z"]).sub == Member("z", 1.0)
    assert load_config(Cfg, None, ["sub.name=z", "sub=null"]).sub is None
    # an empty value is YAML null
    assert load_config(Cfg, None, ["extra.name="]).extra.name is None


def test_numbers_int_for_float_and_float_text():
    cfg = load_config(Cfg, None, ["train.lr=2"])
    assert cfg.train.lr == 2.0 and isinstance(cfg.train.lr, float)
    # PyYAML (YAML 1.1) reads 1e-3 as the string '1e-3'; float fields accept numeric text
    for text, value in [("1e-3", 1e-3), ("'1e-3'", 1e-3), ("-2.5E+4", -2.5e4), ("1.0e5", 1e5)]:
        assert load_config(Cfg, None, [f"train.lr={text}"]).train.lr == value


def test_str_field_takes_numeric_looking_text_but_not_numbers(tmp_path):
    assert load_config(Cfg, None, ["extra.name=1e-3"]).extra.name == "1e-3"  # text in YAML 1.1
    assert load_config(Cfg, None, ["extra.name='5'"]).extra.name == "5"
    assert error_of(Cfg, None, ["extra.name=5"]) == (
        "override 'extra.name=5': field 'extra.name': expected str, got 5 (int); quote it to pass text"
    )
    path = write(tmp_path, "extra:\n  members:\n    - name: 12\n")
    assert error_of(Cfg, path) == (
        f"{path}:3: field 'extra.members[0].name': expected str, got 12 (int); quote it to pass text"
    )


# ---------------------------------------------------------------- errors


def test_unknown_key_names_file_line_field_and_allowed(tmp_path):
    path = write(tmp_path, "seed: 1\ntrain:\n  epochs: 2\n  lrr: 0.1\n")
    assert error_of(Cfg, path) == (
        f"{path}:4: field 'train.lrr': unknown key (allowed: batch_size, epochs, lr); "
        "did you mean 'lr'?"
    )
    path = write(tmp_path, "sede: 1\n")
    assert error_of(Cfg, path) == (
        f"{path}:1: field 'sede': unknown key (allowed: extra, regularizer, seed, sub, train); "
        "did you mean 'seed'?"
    )


def test_bad_type_names_value_line(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 2\n\n  lr: fast\n")
    assert error_of(Cfg, path) == f"{path}:4: field 'train.lr': expected float, got 'fast'"
    path = write(tmp_path, "extra:\n  seeds: [1,\n    x, 3]\n")
    assert error_of(Cfg, path) == f"{path}:3: field 'extra.seeds[1]': expected int, got 'x'"
    path = write(tmp_path, "train: 5\n")
    assert error_of(Cfg, path) == (
        f"{path}:1: field 'train': expected a section (batch_size, epochs, lr), got 5 (int)"
    )
    path = write(tmp_path, "extra:\n  seeds: 3\n")
    assert error_of(Cfg, path) == f"{path}:2: field 'extra.seeds': expected list[int], got 3 (int)"
    path = write(tmp_path, "extra:\n  pair: [a, 1, 2]\n")
    assert error_of(Cfg, path) == (
        f"{path}:2: field 'extra.pair': expected 2 items (tuple[str, float]), got 3"
    )


def test_bool_is_not_a_number_and_numbers_are_not_bools():
    assert error_of(Cfg, None, ["seed=true"]) == (
        "override 'seed=true': field 'seed': expected int, got true (bool)"
    )
    assert error_of(Cfg, None, ["train.lr=false"]) == (
        "override 'train.lr=false': field 'train.lr': expected float, got false (bool)"
    )
    assert error_of(Cfg, None, ["extra.flag=1"]) == (
        "override 'extra.flag=1': field 'extra.flag': expected bool, got 1 (int)"
    )
    assert error_of(Cfg, None, ["seed=1.0"]) == (
        "override 'seed=1.0': field 'seed': expected int, got 1.0 (float)"
    )
    assert error_of(Cfg, None, ["train.lr=inf"]) == (
        "override 'train.lr=inf': field 'train.lr': expected float, got 'inf'"
    )


def test_bad_choice_lists_allowed_values(tmp_path):
    assert error_of(Cfg, None, ["regularizer.kind=foo"]) == (
        "override 'regularizer.kind=foo': field 'regularizer.kind': "
        "bad choice 'foo' (allowed: none, kl, chi2, sqrt_chi2)"
    )
    path = write(tmp_path, "extra:\n  level: 4\n")
    assert (
        error_of(Cfg, path) == f"{path}:2: field 'extra.level': bad choice '4' (allowed: 1, 2, 3)"
    )
    path = write(tmp_path, "extra:\n  level: '2'\n")  # text '2' is not the int choice 2
    assert (
        error_of(Cfg, path) == f"{path}:2: field 'extra.level': bad choice '2' (allowed: 1, 2, 3)"
    )


def test_union_error_names_all_members():
    assert error_of(Cfg, None, ["extra.either=[1]"]) == (
        "override 'extra.either=[1]': field 'extra.either': expected int | str, got a list"
    )


def test_malformed_yaml_gives_line_and_reason(tmp_path):
    path = write(tmp_path, "seed: 1\ntrain:\n  lr: [1, 2\nextra: {}\n")
    message = error_of(Cfg, path)
    assert message.startswith(f"{path}:4: invalid YAML: ")
    assert "expected ',' or ']'" in message
    path = write(tmp_path, "seed: 1\n  bad: indent\n")
    assert error_of(Cfg, path) == f"{path}:2: invalid YAML: mapping values are not allowed here"
    path = write(tmp_path, "seed: 1\n---\nseed: 2\n")
    assert error_of(Cfg, path) == (
        f"{path}:2: invalid YAML: expected a single document in the stream, "
        "but found another document"
    )


def test_top_level_must_be_mapping(tmp_path):
    path = write(tmp_path, "- 1\n- 2\n")
    assert error_of(Cfg, path) == f"{path}:1: top level must be a mapping of fields, got a list"


def test_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path, "seed: 1\ntrain: {}\nseed: 2\n")
    assert error_of(Cfg, path) == f"{path}:3: field 'seed': duplicate key (first set on line 1)"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert error_of(Cfg, path) == f"{path}: config file not found"


def test_override_syntax_errors():
    assert error_of(Cfg, None, ["train.lr"]) == (
        "override 'train.lr': expected key=value, e.g. train.lr=1e-3"
    )
    assert error_of(Cfg, None, ["=3"]) == "override '=3': expected key=value, e.g. train.lr=1e-3"
    assert error_of(Cfg, None, ["train.nope=1"]) == (
        "override 'train.nope=1': field 'train.nope': unknown key (allowed: batch_size, epochs, lr)"
    )
    assert error_of(Cfg, None, ["seed.x=1"]) == (
        "override 'seed.x=1': field 'seed': is int, not a section; set it whole"
    )
    message = error_of(Cfg, None, ["extra.seeds=[1,2"])
    assert message.startswith("override 'extra.seeds=[1,2': field 'extra.seeds': bad YAML value: ")


def test_override_error_not_blamed_on_file(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 2\n")
    assert error_of(Cfg, path, ["train={lr: fast}"]) == (
        "override 'train={lr: fast}': field 'train.lr': expected float, got 'fast'"
    )


def test_post_init_errors_name_field_and_its_origin(tmp_path):
    path = write(tmp_path, "inner:\n  total: 5\n  warmup: 7\n")
    assert error_of(Outer, path) == f"{path}:3: field 'inner.warmup': must be <= total"
    assert error_of(Outer, None, ["inner.warmup=20"]) == (
        "override 'inner.warmup=20': field 'inner.warmup': must be <= total"
    )
    # a message without a field prefix names the section (line of its key)
    path = write(tmp_path, "\ninner:\n  total: 13\n")
    assert error_of(Outer, path) == f"{path}:2: field 'inner': total of 13 is unlucky"
    assert error_of(Checked, None, ["total=13"]) == "total of 13 is unlucky"


def test_unsupported_annotation_is_a_bug_not_a_config_error():
    @dataclass
    class Bad:
        x: set = field(default_factory=set)

    with pytest.raises(TypeError, match="unsupported type"):
        load_config(Bad, None, ["x=[1]"])


# ---------------------------------------------------------------- dumping and round trip


def test_config_to_dict_plain_types():
    cfg = Cfg(sub=Member("m", 2.0))
    data = config_to_dict(cfg)
    assert list(data) == ["seed", "train", "regularizer", "extra", "sub"]
    assert data["extra"]["shape"] == [2, 3]
    assert data["extra"]["out"] == "runs/x"
    assert data["sub"] == {"name": "m", "weight": 2.0}


def test_round_trip(tmp_path):
    cfg = load_config(
        Cfg,
        None,
        [
            "seed=7",
            "train.lr=1e-10",
            "regularizer.kind=sqrt_chi2",
            "extra.seeds=[]",
            "extra.shape=[1, 2, 3]",
            "extra.weights={'yes': 1.5, '1': 2}",
            "extra.name='null'",
            "extra.out=a/b",
            "extra.switch=off",
            "extra.members=[{name: 'on', weight: 1e20}]",
            "extra.either='12'",
            "sub={name: x}",
        ],
    )
    text = dump_config(cfg)
    assert text.splitlines()[0] == "seed: 7"
    assert load_config(Cfg, write(tmp_path, text)) == cfg
    assert load_config(Cfg, write(tmp_path, dump_config(Cfg()))) == Cfg()


# ---------------------------------------------------------------- help and presets


def test_config_fields_flattened_with_help_and_defaults():
    infos = config_fields(Cfg)
    by_name = {i.name: i for i in infos}
    assert [i.name for i in infos[:5]] == [
        "seed",
        "train.batch_size",
        "train.epochs",
        "train.lr",
        "regularizer.kind",
    ]
    assert by_name["seed"] == FieldInfo("seed", "int", "0", "random seed")
    assert by_name["train.lr"] == FieldInfo("train.lr", "float", "0.003", "peak learning rate")
    assert by_name["regularizer.kind"].type == "none|kl|chi2|sqrt_chi2"
    assert by_name["regularizer.kind"].default == "kl"  # from the section's default_factory
    assert by_name["extra.seeds"].default == "[0]"
    assert by_name["extra.name"] == FieldInfo("extra.name", "str | None", "null", "")
    assert by_name["extra.out"].type == "path"
    assert by_name["sub"].type == "Member | None"  # optional sections are one leaf


def test_every_default_is_a_valid_override_value():
    overrides = [f"{i.name}={i.default}" for i in config_fields(Cfg)]
    assert load_config(Cfg, None, overrides) == Cfg()


def test_resolve_config_path(tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    (configs / "sft").mkdir(parents=True)
    (configs / "sft" / "toy.yaml").write_text("seed: 1\n")
    (configs / "sft" / "smoke.yaml").write_text("seed: 2\n")
    assert resolve_config_path("sft", "toy", configs) == configs / "sft" / "toy.yaml"
    assert resolve_config_path("sft", None, configs) is None
    own = write(tmp_path, "seed: 3\n", "mine.yaml")
    assert resolve_config_path("sft", str(own), configs) == own
    with pytest.raises(ConfigError) as info:
        resolve_config_path("sft", "big", configs)
    assert str(info.value) == "unknown preset 'big' for 'sft' (available: smoke, toy)"
    with pytest.raises(ConfigError) as info:
        resolve_config_path("ppo", "toy", configs)
    assert (
        str(info.value) == f"unknown preset 'toy' for 'ppo' (available: none in {configs / 'ppo'})"
    )
    with pytest.raises(ConfigError) as info:
        resolve_config_path("sft", "no/such.yaml", configs)
    assert str(info.value) == "no/such.yaml: config file not found"
    monkeypatch.setenv("GOODHART_CONFIGS", str(configs))
    assert find_configs_dir() == configs
    assert resolve_config_path("sft", "smoke") == configs / "sft" / "smoke.yaml"


def test_find_configs_dir_walks_up_to_the_checkout(monkeypatch):
    monkeypatch.delenv("GOODHART_CONFIGS", raising=False)
    found = find_configs_dir()
    assert found is not None and found.name == "configs"
    assert any(child.is_dir() for child in found.iterdir())
