"""A tiny transformers model made on the spot: random weights, a tokenizer trained on a few sentences.

Saved with ``save_pretrained`` to a folder, it is loaded by the plugin exactly as a downloaded model would
be. Two folders: ``chat`` (its tokenizer has a chat template) and ``base`` (none: a base model).
"""

from __future__ import annotations

import shutil
from pathlib import Path

SENTENCES = [
    "The capital of France is Paris.",
    "What is the capital of France?",
    "Seventeen plus twenty-five is forty-two.",
    "Write a haiku about the sea: waves fold into foam, salt wind carries gull voices, the tide keeps its time.",
    "Hello! How can I help you today?",
    "Q: A: user assistant system",
]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CONTEXT = 4096


def build(folder: Path, *, layers: int = 2, hidden: int = 32) -> dict[str, Path]:
    """Write the two model folders under ``folder`` and return them by name."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(SENTENCES, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=CONTEXT,
        bos_token_id=fast.bos_token_id, eos_token_id=None, pad_token_id=fast.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = None  # random weights: run to max_tokens, never stop early
    base = folder / "base"
    model.save_pretrained(base)
    fast.save_pretrained(base)
    chat = folder / "chat"
    shutil.copytree(base, chat)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(chat)
    return {"base": base, "chat": chat}
