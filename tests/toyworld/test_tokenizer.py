"""The toy tokenizer survives save/load with its padding side and chat template."""

from transformers import AutoTokenizer

from goodhartlab.data.encoding import format_prompt
from goodhartlab.toyworld.vocab import all_tokens, build_tokenizer


def test_round_trip(tmp_path) -> None:
    tok = build_tokenizer()
    assert len(tok) == len(all_tokens()) == 89
    assert tok.pad_token_id == 0
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.padding_side == "left"
    text = "[BOS] list two fruits [SEP] apple and pear [EOS]"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert format_prompt(loaded, "list two fruits") == "[BOS] list two fruits [SEP]"
    ids = loaded(format_prompt(loaded, "list two fruits"), add_special_tokens=False)["input_ids"]
    assert ids[0] == loaded.bos_token_id and ids[-1] == loaded.sep_token_id and len(ids) == 5
