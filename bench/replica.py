"""A random-weight replica of EmbeddingGemma-300M (the paper's Table-1 Gemma3 encoder), saved as a
sentence-transformers directory: the memory and time profile of the real model without its weights.

    python bench/replica.py [OUT_DIR]        # default /tmp/gemma3-replica; ~1.2 GB of float32 weights

``build_gemma3_replica(out_dir)`` writes it (and returns the path; an existing complete replica is kept).
The architecture is the real model's, as its sentence-transformers printout and config give it:
``Gemma3TextModel`` with 24 layers, hidden 768, intermediate 1152, 3 attention heads and 1 key/value
head of 256 dims, vocabulary 262,144, 2,048 positions, bidirectional attention (where the installed
transformers has ``use_bidirectional_attention``); then mean pooling, Dense 768 -> 3072, Dense
3072 -> 768 (no bias, identity activation) and Normalize; ``max_seq_length`` 2048. 307.6 M parameters
like the original.

The tokenizer is not Gemma's (that needs its files): a character-level one (every character one
token, ``<bos>`` and ``<eos>`` around each text; unused entries fill it to the 262,144 rows). On digit sequences that is Gemma's own behaviour,
which splits numbers digit by digit (the real tokenizer gave 5,619 tokens for the paper's 5,571
characters), so the replica reads as many tokens as the real model does. Its ids use only the first
~100 rows of the 262,144-row embedding matrix, which changes no cost: the matrix is held, and looked
up, all the same.
"""

from __future__ import annotations

import json
import string
import sys
import tempfile
from pathlib import Path

HIDDEN, DENSE, LAYERS, VOCAB, MAX_LEN = 768, 3072, 24, 262_144, 2048
MARKER = "gemma3-replica.json"


def _tokenizer():
    """A character-level fast tokenizer: ``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3, printable ASCII, then
    unused tokens up to the model's 262,144 (so that it is as large as the embedding matrix, as Gemma's is)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>"])}
    for ch in string.printable:
        vocab.setdefault(ch, len(vocab))
    vocab.update({f"<unused{i}>": i for i in range(len(vocab), VOCAB)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", pair="<bos> $A <eos> $B <eos>",
        special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>", pad_token="<pad>", model_max_length=MAX_LEN)


def _config():
    import inspect

    from transformers import Gemma3TextConfig

    kw = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=1152, num_hidden_layers=LAYERS,
              num_attention_heads=3, num_key_value_heads=1, head_dim=256, max_position_embeddings=MAX_LEN,
              pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=True)
    if "use_bidirectional_attention" in inspect.signature(Gemma3TextConfig.__init__).parameters:
        kw["use_bidirectional_attention"] = True
    return Gemma3TextConfig(**kw)


def build_gemma3_replica(out_dir: str | Path = "/tmp/gemma3-replica", *, seed: int = 0) -> Path:
    """Write the replica (random float32 weights from ``seed``) as a sentence-transformers directory at
    ``out_dir`` and return it; a directory holding a complete replica of the same seed is returned as is."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
    from transformers import Gemma3TextModel

    out = Path(out_dir)
    marker = out / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("seed") == seed:
        return out
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and holds something else; remove it or choose another directory")
    hf_logging.disable_progress_bar()  # "Writing model shards" bars
    with tempfile.TemporaryDirectory(prefix="gemma3-replica-", dir=out.parent if out.parent.exists() else None) as stage:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Gemma3TextModel(_config()).to(torch.float32).eval()
            dense_up = Dense(HIDDEN, DENSE, bias=False, activation_function=torch.nn.Identity())
            dense_down = Dense(DENSE, HIDDEN, bias=False, activation_function=torch.nn.Identity())
        model.save_pretrained(stage, safe_serialization=True)
        tok = _tokenizer()
        tok.save_pretrained(stage)
        del model
        transformer = Transformer(stage, max_seq_length=MAX_LEN)
        pipeline = SentenceTransformer(modules=[transformer, Pooling(HIDDEN, pooling_mode="mean"), dense_up,
                                                dense_down, Normalize()], device="cpu")
        out.mkdir(parents=True, exist_ok=True)
        pipeline.save(str(out), create_model_card=False)
        tok.save_pretrained(str(out))
    n = sum(p.numel() for p in pipeline.parameters())
    marker.write_text(json.dumps({"seed": seed, "parameters": n, "of": "google/embeddinggemma-300m (architecture)"}))
    return out


def main(argv: list[str]) -> int:
    import time

    out = argv[0] if argv else "/tmp/gemma3-replica"
    t = time.perf_counter()
    path = build_gemma3_replica(out)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    info = json.loads((path / MARKER).read_text())
    print(f"{path}: {info['parameters'] / 1e6:.1f} M parameters, {size / 1e9:.2f} GB on disk, "
          f"{time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
