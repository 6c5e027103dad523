"""`goodhart evaluate latents` at tiny size: the plot and the outlier-rate JSON."""

import json

from goodhartlab.cli import main
from goodhartlab.recipes.short_forms import latents_args


def test_cli_args_collect_repeated_checkpoints() -> None:
    args = ["--checkpoint", "A", "--checkpoint=B", "--rm", "R", "--out", "O", "seed=1"]
    assert latents_args(args) == ["rm=R", "--out", "O", "seed=1", 'checkpoints=["A", "B"]']


def test_evaluate_latents_writes_plot_and_rates(tiny_ppo_models, tmp_path) -> None:
    from goodhartlab.models.inform import InfoRMConfig
    from goodhartlab.models.reward import load_reward_model, save_reward_model

    rm, tok = load_reward_model("toy:rm", device="cpu", seed=3, inform=InfoRMConfig(latent_dim=4))
    save_reward_model(rm, tok, tmp_path / "inform", 0.0, 1.0)
    policy, out = tiny_ppo_models / "policy", tmp_path / "latents"
    argv = ["evaluate", "latents", "--config", "smoke", "--checkpoint", str(policy),
            "--checkpoint", str(policy), "--rm", str(tmp_path / "inform"), f"sft={policy}",
            "device=cpu", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((out / "latent_outliers.json").read_text())
    assert list(result["checkpoints"]) == [str(policy)]  # the same dir twice: once
    assert 0.0 <= result["checkpoints"][str(policy)]["outlier_rate"] <= 1.0
    assert result["embedding"] in ("PCA", "t-SNE")
    assert (out / "latents.png").stat().st_size > 1000
