"""Every merge variant of one LoRA run on a model: geometry and similarity to base and lora.

    python bench/variants.py [--model minilm] [--seed 0] [--t 0.5]

Trains LoRA with the default recipe (3 checkpoints), builds the variants (base, lora,
soup, slerp, slerp_ckpt and every method of geomcheck.merge.METHODS), and prints per
variant: silhouette (true labels) on the task windows, the paper dataset and the
held-out families; linear CKA to base and to lora on the paper + held-out texts; and
for the SLERP variants the share of tensors / parameters where SLERP fell back to LERP.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--t", type=float, default=0.5)
    args = ap.parse_args()
    os.environ.setdefault("GEOMCHECK_CACHE_DIR", tempfile.mkdtemp(prefix="geomcheck-bench-"))

    import numpy as np

    from geomcheck.adapt import WindowTask, train_lora
    from geomcheck.adapt.variants import build_variants
    from geomcheck.merge import METHODS
    from geomcheck.metrics import linear_cka, silhouette

    root = Path(tempfile.mkdtemp(prefix="geomcheck-variants-"))
    run = train_lora(args.model, out_dir=root / "run", seed=args.seed, progress=False, evaluate_sets=False)
    methods = ("soup", "slerp", "slerp_ckpt", *[m for m in METHODS if m != "slerp"])
    variants = build_variants(args.model, run, methods=methods, t=args.t, out_dir=root / "v", device="cpu")
    sets = WindowTask().eval_sets()
    probe = list(sets["paper"].texts) + list(sets["heldout"].texts)
    X = {name: emb.encode(probe, cache=False) for name, emb in variants.items()}
    info = json.loads((root / "v" / "variants.json").read_text())
    print(f"model {args.model}, seed {args.seed}, t {args.t}; CKA on {len(probe)} paper + held-out texts")
    print(f"{'variant':<16} {'task':>7} {'paper':>7} {'heldout':>8} {'CKA base':>9} {'CKA lora':>9}  SLERP=LERP share")
    for name, emb in variants.items():
        sil = {k: silhouette(emb.encode(sets[k].texts, cache=False), sets[k].labels) for k in ("task", "paper", "heldout")}
        fb = info.get(name)
        share = (f"{fb['share_tensors_slerp_is_lerp']:.0%} of tensors, {fb['share_params_slerp_is_lerp']:.0%} of params, "
                 f"{fb['share_changed_tensors_slerp_is_lerp']:.0%} of changed tensors") if fb else ""
        print(f"{name:<16} {sil['task']:>+7.3f} {sil['paper']:>+7.3f} {sil['heldout']:>+8.3f} "
              f"{linear_cka(X[name], X['base']):>9.3f} {linear_cka(X[name], X['lora']):>9.3f}  {share}")
    assert all(np.isfinite(x).all() for x in X.values())


if __name__ == "__main__":
    main()
