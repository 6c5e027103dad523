"""The toy world's words: categories of items, number words, connectives, fillers, specials.

Why a closed vocabulary of whole words: the gold reward is a program over words, so every token
the policy can emit has a known meaning to the gold program. 8 categories x 8 items, 5 number
words, 2 connectives, 5 filler words, "list", and 4 specials make 89 tokens.
"""

from __future__ import annotations

CATEGORIES: dict[str, tuple[str, ...]] = {
    "fruits": ("apple", "pear", "plum", "grape", "mango", "lemon", "cherry", "peach"),
    "animals": ("cat", "dog", "horse", "tiger", "mouse", "sheep", "goat", "wolf"),
    "colors": ("red", "blue", "green", "yellow", "purple", "orange", "black", "white"),
    "tools": ("hammer", "saw", "drill", "wrench", "chisel", "pliers", "file", "ruler"),
    "cities": ("paris", "rome", "tokyo", "cairo", "lima", "oslo", "delhi", "quito"),
    "metals": ("iron", "gold", "silver", "copper", "tin", "zinc", "lead", "nickel"),
    "trees": ("oak", "pine", "birch", "maple", "cedar", "elm", "ash", "willow"),
    "sports": ("soccer", "tennis", "golf", "rugby", "hockey", "boxing", "rowing", "judo"),
}
NUMBER_WORDS: tuple[str, ...] = ("one", "two", "three", "four", "five")
CONNECTIVES: tuple[str, ...] = ("and", ",")
FILLERS: tuple[str, ...] = ("great", "thanks", "very", "sure", "!")
COMMAND_WORD = "list"

BOS, EOS, PAD, SEP = "[BOS]", "[EOS]", "[PAD]", "[SEP]"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, SEP)

# "[BOS] list three fruits [SEP]": the prompt format, stored as the tokenizer's chat template so
# toy and real instruct models are formatted by the same `apply_chat_template` call.
CHAT_TEMPLATE = (
    "{{ bos_token }} {% for m in messages %}{{ m['content'] }} {% endfor %}{{ sep_token }}"
)

ITEM_CATEGORY: dict[str, str] = {item: cat for cat, items in CATEGORIES.items() for item in items}
MAX_K = len(NUMBER_WORDS)


def all_tokens() -> list[str]:
    """Every token in a fixed order (ids are positions), specials first so pad = 0."""
    words = [COMMAND_WORD, *NUMBER_WORDS, *CATEGORIES, *ITEM_CATEGORY, *CONNECTIVES, *FILLERS]
    return [*SPECIALS, *words]


def build_tokenizer(padding_side: str = "left"):
    """A real `PreTrainedTokenizerFast` over the toy words (word-level, whitespace split).

    Why the real class: the toy world must exercise the same save/load path as a Hugging Face
    model. `padding_side` is passed to the constructor because only then does it survive
    save_pretrained/from_pretrained (DESIGN.md §6).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(all_tokens())}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        sep_token=SEP,
        padding_side=padding_side,
        model_max_length=64,
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )
