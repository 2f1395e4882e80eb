"""CUDA paths of the Embedder, checked on a real GPU (run on a GPU machine; CI never does).

    python bench/gpu.py

Prints: the device and dtype "auto" picks for an encoder and a decoder; CUDA vs CPU
float32 agreement; bfloat16 vs float32 agreement (cosine); the out-of-memory back-off
(a batch that cannot fit is halved until it does, and gives the same vectors as a small
batch); encode throughput at float32 vs bfloat16 on a 0.6B-sized random Qwen3.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _qwen3_like(path: Path, tokenizer_from: Path, *, hidden: int, layers: int, inter: int) -> Path:
    """A randomly initialised Qwen3 of a real size, with the tiny model's tokenizer."""
    import shutil

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, Qwen3Config, Qwen3Model

    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    stage = path.with_name(path.name + "-hf")
    Qwen3Model(cfg).save_pretrained(stage)
    tok.save_pretrained(stage)
    tr = Transformer(str(stage), processor_kwargs={"model_max_length": 32768})
    SentenceTransformer(modules=[tr, Pooling(hidden, "lasttoken")], device="cpu").save(str(path))
    shutil.rmtree(stage)
    return path


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    os.environ.setdefault("GEOMCHECK_CACHE_DIR", tempfile.mkdtemp(prefix="geomcheck-gpu-"))
    import torch

    from geomcheck.data import heldout_dataset, paper_dataset
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    assert torch.cuda.is_available(), "run this on a machine with CUDA"
    print(f"GPU {torch.cuda.get_device_name()}, torch {torch.__version__}")
    root = Path(tempfile.mkdtemp(prefix="geomcheck-gpu-models-"))
    texts = list(paper_dataset().texts) + list(heldout_dataset().texts)
    short = list(paper_dataset(per_family=40).texts)  # 240 texts of 50 small numbers

    for kind in ("bert", "qwen3"):
        path = tiny_model(kind, root / kind)
        auto = load_model(str(path), cache=False)
        cpu = load_model(str(path), device="cpu", cache=False)
        cuda32 = load_model(str(path), device="cuda", dtype="float32", cache=False)
        a, c, g = auto.encode(texts), cpu.encode(texts), cuda32.encode(texts)
        cos = (a * c).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(c, axis=1)
        print(f"tiny {kind}: auto -> device={auto.device} dtype={auto.dtype}; "
              f"|cuda fp32 - cpu fp32| max={np.abs(g - c).max():.2e}; "
              f"auto vs cpu fp32 cosine min={cos.min():.5f}; fingerprints cuda!=cpu: {auto.fingerprint != cpu.fingerprint}")

    big = _qwen3_like(root / "qwen3-0.6b-random", root / "qwen3", hidden=1024, layers=28, inter=3072)
    long_texts = [", ".join(str(i) for i in range(s, s + 1500)) for s in range(0, 512 * 7, 7)]  # ~8k tokens each
    for dtype in ("float32", "bfloat16"):
        emb = load_model(str(big), device="cuda", dtype=dtype, cache=False, batch_size=16)
        emb.encode(short)  # warm-up
        torch.cuda.synchronize()
        t = time.perf_counter()
        emb.encode(short * 4)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        print(f"random qwen3 0.6B-size {dtype}: {len(short) * 4 / dt:.0f} texts/s (paper-style texts, batch 16)")

    emb = load_model(str(big), device="cuda", dtype="bfloat16", cache=False, batch_size=512)
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    X = emb.encode(long_texts)
    dt = time.perf_counter() - t
    print(f"OOM back-off: asked batch 512 of {len(long_texts)} texts x ~8k tokens -> settled at batch "
          f"{emb.last_batch_size} in {dt:.1f} s, peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    ref = load_model(str(big), device="cuda", dtype="bfloat16", cache=False, batch_size=emb.last_batch_size)
    Y = ref.encode(long_texts[:8])
    cos = (X[:8] * Y).sum(1) / np.linalg.norm(X[:8], axis=1) / np.linalg.norm(Y, axis=1)
    print(f"OOM back-off result vs a fresh run at that batch size: cosine min {cos.min():.6f}, finite {np.isfinite(X).all()}")


if __name__ == "__main__":
    main()
