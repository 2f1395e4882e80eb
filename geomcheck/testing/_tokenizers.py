"""The tiny models' tokenizers, each of its real family's class and scheme, trained or spelled out here.

- WordPiece ``BertTokenizer`` (BERT, MiniLM): ``[CLS] … [SEP]``;
- byte-level BPE ``Qwen2Tokenizer`` (Qwen2 / Qwen3): digits isolated, ``<|endoftext|>`` as EOS and pad,
  appended either by ``tokenizer.json`` itself (Qwen3-Embedding) or only by ``tokenizer_config.json``'s
  ``add_eos_token`` (the layout transformers 5 no longer honours: ``geomcheck.models`` restores it);
- SentencePiece-style byte-fallback BPE ``GemmaTokenizer`` (Gemma 2 / 3: ``<bos>``, digits one by one)
  and ``LlamaTokenizer`` (Mistral: ``<s>``, ``▁`` word marks; EOS in ``tokenizer_config.json`` only, as
  intfloat/e5-mistral-7b-instruct ships it);
- byte-level BPE with Llama 3's specials (``<|begin_of_text|>``) for the Llama backbone;
- a Unigram ``XLMRobertaTokenizer`` (XLM-R, multilingual-e5): ``<s> … </s>``.

The character vocabularies have no merges: every digit is its own token, as in Gemma and Qwen.
"""

from __future__ import annotations

import json
import pathlib
import string
from collections.abc import Iterator
from typing import Any

__all__ = ["training_corpus", "bert_tokenizer", "qwen_tokenizer", "gemma_tokenizer", "mistral_tokenizer",
           "llama3_tokenizer", "xlmr_tokenizer", "patch_tokenizer_config"]

_BERT_BPE_VOCAB = 256  # learned pieces; the 5 BERT specials come on top
_QWEN_BPE_VOCAB = 320  # byte-level BPE starts from all 256 bytes + <|endoftext|>
_BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_QWEN_EOS = "<|endoftext|>"
# what a SentencePiece vocabulary spells directly; anything else falls back to its UTF-8 bytes
_CHARS = string.digits + string.ascii_letters + string.punctuation


def training_corpus() -> list[str]:
    """The tokenizer's training text: integer sequences ``"2, 3, 5, 7"`` from simple arithmetic.

    Consecutive runs, multiples of k, squares, cubes, triangular numbers, Fibonacci numbers
    and primes (sieve of Eratosthenes); deterministic, no I/O.
    """
    lines: list[str] = []

    def add(terms: Iterator[int] | list[int]) -> None:
        lines.append(", ".join(str(t) for t in terms))

    for start in range(0, 1000, 37):
        add(range(start, start + 20))
    for k in range(2, 40):
        add(k * i for i in range(1, 25))
    add(i * i for i in range(100))
    add(i**3 for i in range(40))
    add(i * (i + 1) // 2 for i in range(80))
    fib = [0, 1]
    while len(fib) < 60:
        fib.append(fib[-1] + fib[-2])
    add(fib)
    sieve = bytearray([1]) * 2000
    sieve[:2] = b"\x00\x00"
    for p in range(2, 45):
        if sieve[p]:
            sieve[p * p :: p] = bytearray(len(sieve[p * p :: p]))
    primes = [n for n, is_prime in enumerate(sieve) if is_prime]
    for i in range(0, len(primes), 30):
        add(primes[i : i + 30])
    return lines



def bert_tokenizer(max_length: int) -> Any:
    """A WordPiece ``BertTokenizer`` whose vocabulary is learned by BPE on :func:`training_corpus`.

    WordPiece vocabularies are learned with BPE merges over word pieces (what
    ``tokenizers.trainers.WordPieceTrainer`` does); see Wu et al. 2016, arXiv:1609.08144.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertTokenizer

    # WordPieceTrainer gives "##x" pieces ids in hash-map order, so its vocabulary changes from
    # run to run (ties at the cut-off), which would change embeddings for the same seed. So train
    # plain BPE, whose alphabet is sorted, on words where every non-initial character is a
    # distinct private-use symbol, then spell those symbols back as "##" pieces.
    initial = string.digits + string.ascii_lowercase
    cont = {c: chr(0xE000 + i) for i, c in enumerate(initial)}
    back = {v: k for k, v in cont.items()}
    splitter = pre_tokenizers.BertPreTokenizer()  # BertTokenizer's own pre-tokenizer

    def marked(line: str) -> str:
        words = (w for w, _ in splitter.pre_tokenize_str(line.lower()))
        return " ".join(w[0] + "".join(cont.get(c, c) for c in w[1:]) for w in words)

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=_BERT_BPE_VOCAB,
        # Letters, punctuation and their "##" forms, so any ASCII prompt avoids [UNK].
        initial_alphabet=list(initial + string.punctuation) + list(cont.values()),
        show_progress=False,
    )
    backend.train_from_iterator((marked(line) for line in training_corpus()), trainer)

    vocab = {token: i for i, token in enumerate(_BERT_SPECIALS)}
    for piece, _ in sorted(backend.get_vocab().items(), key=lambda kv: kv[1]):
        word = "".join(back.get(c, c) for c in piece)
        vocab.setdefault("##" + word if piece[0] in back else word, len(vocab))
    return BertTokenizer(vocab=vocab, model_max_length=max_length)


def qwen_tokenizer(max_length: int, eos_in_tokenizer: bool = True) -> Any:
    """A byte-level BPE ``Qwen2Tokenizer`` trained on :func:`training_corpus`, left padding; it appends EOS
    itself with ``eos_in_tokenizer`` (else only ``tokenizer_config.json`` asks for it: ``patch_tokenizer_config``)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # Qwen2Tokenizer rebuilds its normalizer/pre-tokenizer on load and keeps only vocab+merges,
    # so train under that same pipeline. Its regex isolates every digit (as real Qwen does),
    # so numbers are spelled digit by digit and on this corpus the trainer learns no merges.
    backend = Tokenizer(models.BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=_QWEN_BPE_VOCAB,
        special_tokens=[_QWEN_EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte: no text is unencodable
        show_progress=False,
    )
    backend.train_from_iterator(training_corpus(), trainer)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in _bpe_merges(backend)]
    return Qwen2Tokenizer(
        vocab=backend.get_vocab(),
        merges=merges,
        eos_token=_QWEN_EOS,
        pad_token=_QWEN_EOS,
        # Like Qwen3-Embedding: EOS closes every text, so last-token pooling reads the EOS state.
        add_eos_token=eos_in_tokenizer,
        padding_side="left",
        model_max_length=max_length,
    )


def _bpe_merges(backend: Any) -> list[Any]:
    """The merges of a trained ``tokenizers`` BPE model (only its JSON exposes them)."""
    import json

    return list(json.loads(backend.to_str())["model"]["merges"])




def _spm_vocab(specials: list[str], size: int | None = None) -> dict[str, int]:
    """A byte-fallback BPE vocabulary: ``specials``, ``▁``, the characters of ``_CHARS``, the 256 byte tokens
    ``<0x00>``…``<0xFF>``, then ``<unused{k}>`` pieces up to ``size`` (a big model's vocabulary, never produced)."""
    vocab = {t: i for i, t in enumerate(specials)}
    for piece in ["▁", *_CHARS, *(f"<0x{b:02X}>" for b in range(256))]:
        vocab.setdefault(piece, len(vocab))
    k = 0
    while size is not None and len(vocab) < size:
        vocab.setdefault(f"<unused{k}>", len(vocab))
        k += 1
    return vocab


def gemma_tokenizer(max_length: int, vocab_size: int | None = None) -> Any:
    """A ``GemmaTokenizer`` (byte-fallback BPE, ``<bos>`` prepended, no EOS), characters as pieces; with
    ``vocab_size`` padded with unused pieces to that size (Gemma 3: 262,144)."""
    from transformers import GemmaTokenizer

    vocab = _spm_vocab(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"], vocab_size)
    return GemmaTokenizer(vocab=vocab, merges=[], add_bos_token=True, add_eos_token=False,
                          padding_side="right", model_max_length=max_length)


def mistral_tokenizer(max_length: int) -> Any:
    """A ``LlamaTokenizer`` as Mistral's (``<s>`` prepended, ``▁`` word marks, byte fallback), ``</s>`` as pad,
    left padding. ``tokenizer.json`` adds only ``<s>``; :func:`patch_tokenizer_config` asks for EOS as
    e5-mistral-7b-instruct's ``tokenizer_config.json`` does."""
    from transformers import LlamaTokenizer

    vocab = _spm_vocab(["<unk>", "<s>", "</s>"])
    return LlamaTokenizer(vocab=vocab, merges=[], add_bos_token=True, add_eos_token=False, pad_token="</s>",
                          padding_side="left", model_max_length=max_length)


def llama3_tokenizer(max_length: int) -> Any:
    """Byte-level BPE with Llama 3's specials: ``<|begin_of_text|>`` prepended, ``<|end_of_text|>`` as EOS and pad."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bos, eos = "<|begin_of_text|>", "<|end_of_text|>"
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=_QWEN_BPE_VOCAB, special_tokens=[bos, eos],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(training_corpus(), trainer)
    from tokenizers import decoders

    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, backend.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos, pad_token=eos,
                                   padding_side="right", model_max_length=max_length)


def xlmr_tokenizer(max_length: int) -> Any:
    """A Unigram ``XLMRobertaTokenizer`` (``<s> … </s>``, ``▁`` word marks): characters and ``▁``-initial
    digits as pieces, scored so that a word's first digit takes its ``▁`` form."""
    from transformers import XLMRobertaTokenizer

    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    pieces += [("▁" + c, -2.0) for c in string.digits + string.ascii_lowercase]
    pieces += [(c, -4.0) for c in _CHARS]
    pieces.append(("<mask>", 0.0))
    return XLMRobertaTokenizer(vocab=pieces, model_max_length=max_length)


def patch_tokenizer_config(model_dir: pathlib.Path, **entries: Any) -> None:
    """Set ``entries`` in ``model_dir/tokenizer_config.json`` (what a repository's file says beyond
    what transformers writes, e.g. ``add_eos_token``)."""
    path = model_dir / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.update(entries)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
