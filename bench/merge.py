"""Benchmark: SLERP of two Qwen3-0.6B-shaped models — geomcheck's streaming merge vs a naive loop vs mergekit.

Writes two float32 safetensors models with the real tensor shapes of Qwen3-Embedding-0.6B
(hidden 1024, 28 layers, intermediate 3072, 16 query / 8 KV heads of 128, vocab 151669:
~0.6 B parameters, ~2.4 GB each; random weights, seeds 0 and 1) into a work directory
once, then runs each variant in its own subprocess and reads that process's wall time and
peak RSS from ``os.wait4`` (so each peak is clean):

- ``geomcheck``: ``geomcheck.merge.merge_files("slerp", [A, B], out, t=0.5)``;
- ``naive``: load both full state dicts (``safetensors.torch.load_file``), SLERP each tensor
  in torch the way mergekit does, ``save_file`` the result;
- ``mergekit``: ``mergekit-yaml`` 0.1.5 from a separate virtualenv (``--mergekit-venv``,
  default /tmp/mk; never a project dependency). Skipped, with the reason, if absent.

Usage::

    python bench/merge.py                    # full size
    python bench/merge.py --layers 4 --vocab 20000     # a quick, small run
    python bench/merge.py --variants geomcheck,naive

Times include interpreter start-up and imports (a whole command each, as a user runs it);
CPU seconds (user + system) and the in-process merge time of the first two are printed too.
On a shared machine wall times move with the other load: compare variants from the same
run, and use ``--repeat`` (the fastest run of each counts). Prints ratios to mergekit
(goal: geomcheck ≤ 0.5× its time) and to one model's size (goal: peak RSS ≤ 2.5×).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HIDDEN, INTERMEDIATE, HEADS, KV_HEADS, HEAD_DIM = 1024, 3072, 16, 8, 128


def qwen3_shapes(layers: int, vocab: int) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of Qwen3ForCausalLM (tied embeddings: no lm_head)."""
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, HIDDEN)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (HIDDEN,),
            p + "post_attention_layernorm.weight": (HIDDEN,),
            p + "self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM),
            p + "self_attn.q_norm.weight": (HEAD_DIM,),
            p + "self_attn.k_norm.weight": (HEAD_DIM,),
            p + "mlp.gate_proj.weight": (INTERMEDIATE, HIDDEN),
            p + "mlp.up_proj.weight": (INTERMEDIATE, HIDDEN),
            p + "mlp.down_proj.weight": (HIDDEN, INTERMEDIATE),
        })
    shapes["model.norm.weight"] = (HIDDEN,)
    return shapes


def write_model(path: Path, shapes: dict[str, tuple[int, ...]], seed: int, layers: int, vocab: int) -> None:
    """A float32 safetensors model written tensor by tensor (header first), plus a Qwen3 config.json."""
    import torch

    path.mkdir(parents=True, exist_ok=True)
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4 * math.prod(shape)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    g = torch.Generator().manual_seed(seed)
    with open(path / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for name, shape in shapes.items():
            t = torch.randn(shape, generator=g).mul_(0.02) if "norm" not in name else 1 + 0.1 * torch.randn(
                shape, generator=g)
            f.write(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    config = {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE, "num_hidden_layers": layers, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM, "vocab_size": vocab,
        "tie_word_embeddings": True, "torch_dtype": "float32", "rms_norm_eps": 1e-6,
        "max_position_embeddings": 32768, "rope_theta": 1000000, "hidden_act": "silu",
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))


def naive_slerp(t: float, v0, v1, dot_threshold: float = 0.9995, eps: float = 1e-8):
    """mergekit's slerp, in torch: normalised copies for the angle, original tensors interpolated."""
    import torch

    n0, n1 = v0.norm(), v1.norm()
    u0 = v0 / n0 if n0 > eps else v0
    u1 = v1 / n1 if n1 > eps else v1
    dot = float((u0 * u1).sum())
    if abs(dot) > dot_threshold:
        return (1 - t) * v0 + t * v1
    theta = math.acos(dot)
    s = math.sin(theta)
    return (math.sin((1 - t) * theta) / s) * v0 + (math.sin(t * theta) / s) * v1 if s else torch.lerp(v0, v1, t)


def worker(variant: str, a: str, b: str, out: str) -> None:
    """One variant inside its own process; prints {"merge_s": …} as its last line."""
    start = time.perf_counter()
    if variant == "geomcheck":
        from geomcheck.merge import merge_files

        merge_files("slerp", [a, b], out, t=0.5)
    elif variant == "naive":
        from safetensors.torch import load_file, save_file

        sa = load_file(str(Path(a) / "model.safetensors"))
        sb = load_file(str(Path(b) / "model.safetensors"))
        merged = {k: naive_slerp(0.5, sa[k], sb[k]) for k in sa}
        Path(out).mkdir(parents=True, exist_ok=True)
        save_file(merged, str(Path(out) / "model.safetensors"), metadata={"format": "pt"})
    else:
        raise SystemExit(f"unknown variant {variant}")
    print(json.dumps({"merge_s": time.perf_counter() - start}))


def run_measured(cmd: list[str], log: Path) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s, peak RSS bytes, exit code, stdout tail) of one command, from its own rusage."""
    start = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss * 1024.0, proc.returncode, out.strip().splitlines()[-1] if out.strip() else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--vocab", type=int, default=151669)
    ap.add_argument("--workdir", default=None, help="where the input models live (made once; default: a temp dir)")
    ap.add_argument("--variants", default="geomcheck,naive,mergekit")
    ap.add_argument("--mergekit-venv", default="/tmp/mk")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per variant, round-robin; the fastest wall time and the largest peak are reported")
    ap.add_argument("--worker", nargs=4, metavar=("VARIANT", "A", "B", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0

    shapes = qwen3_shapes(args.layers, args.vocab)
    n_params = sum(math.prod(s) for s in shapes.values())
    model_bytes = 4 * n_params
    work = Path(args.workdir or Path(tempfile.gettempdir()) / f"geomcheck-bench-merge-{args.layers}x{args.vocab}")
    a, b = work / "A", work / "B"
    for path, seed in ((a, 0), (b, 1)):
        if not (path / "model.safetensors").is_file() or (path / "model.safetensors").stat().st_size < model_bytes:
            t0 = time.perf_counter()
            write_model(path, shapes, seed, args.layers, args.vocab)
            print(f"wrote {path} ({model_bytes / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(f"SLERP t=0.5 of two Qwen3-shaped float32 models: {args.layers} layers, vocab {args.vocab}, "
          f"{n_params / 1e9:.3f} B parameters, {model_bytes / 1e9:.2f} GB each; "
          f"{os.cpu_count()} CPUs; torch threads default")

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    commands: dict[str, list[str]] = {}
    for variant in variants:
        out = work / f"out-{variant}"
        if variant == "mergekit":
            exe = Path(args.mergekit_venv) / "bin" / "mergekit-yaml"
            if not exe.is_file():
                print(f"{variant:>10}: skipped — {exe} not found (python3 -m venv {args.mergekit_venv} && "
                      f"{args.mergekit_venv}/bin/pip install torch==2.13.0 mergekit==0.1.5)")
                continue
            cfg = work / "mergekit.yml"
            cfg.write_text(
                f"merge_method: slerp\nbase_model: {a}\nmodels:\n  - model: {a}\n  - model: {b}\n"
                "parameters:\n  t: 0.5\ndtype: float32\n")
            commands[variant] = [str(exe), str(cfg), str(out), "--no-copy-tokenizer"]
        else:
            commands[variant] = [sys.executable, __file__, "--worker", variant, str(a), str(b), str(out)]

    # Round-robin repeats (A B C A B C …), so a burst of load from elsewhere hits all variants alike.
    runs: dict[str, list[tuple[float, float, float, float | None]]] = {v: [] for v in commands}
    failed: set[str] = set()
    for _ in range(args.repeat):
        for variant, cmd in commands.items():
            if variant in failed:
                continue
            out = work / f"out-{variant}"
            shutil.rmtree(out, ignore_errors=True)
            wall, cpu, rss, rc, tail = run_measured(cmd, work / f"{variant}.log")
            shutil.rmtree(out, ignore_errors=True)
            if rc != 0:
                log = (work / f"{variant}.log").read_text()[-1500:]
                print(f"{variant:>10}: FAILED (exit {rc}); log tail:\n{log}")
                failed.add(variant)
                continue
            inner = json.loads(tail).get("merge_s") if tail.startswith("{") else None
            runs[variant].append((wall, cpu, rss, inner))

    results: dict[str, tuple[float, float, str]] = {}
    for variant, rs in runs.items():
        if not rs:
            continue
        wall, cpu, rss, inner = min(rs)
        walls = ", ".join(f"{r[0]:.2f}" for r in rs)
        note = f"{cpu:.2f} s CPU" + (f", merge {inner:.2f} s in-process" if inner is not None else "")
        results[variant] = (wall, max(r[2] for r in rs), note)
        print(f"{variant:>10}: {wall:6.2f} s wall (runs: {walls}), peak RSS {results[variant][1] / 1e9:5.2f} GB "
              f"({results[variant][1] / model_bytes:4.2f}× one model); {note}")

    if "geomcheck" in results:
        ours = results["geomcheck"]
        for other in ("mergekit", "naive"):
            if other in results:
                print(f"geomcheck / {other}: time {ours[0] / results[other][0]:.2f}×, "
                      f"peak RSS {ours[1] / results[other][1]:.2f}×")
        print(f"goals: time ≤ 0.5× mergekit's; peak RSS ≤ 2.5× one model (geomcheck: "
              f"{ours[1] / model_bytes:.2f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
