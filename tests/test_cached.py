"""geomcheck.adapt.cached: LoRA runs and merged variants built once and read back."""

from __future__ import annotations


import pytest

from geomcheck.adapt.cached import cached_lora_run, cached_variants


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from geomcheck.models import load_model
    from geomcheck.testing import tiny_model

    return load_model(str(tiny_model("bert", tmp_path_factory.mktemp("m") / "bert")), device="cpu")


def test_lora_run_and_variants_are_built_once_then_read_back(tiny_base, tmp_path):
    from geomcheck.adapt import WindowTask

    kw = dict(train_data=WindowTask(families=("prime", "odd"), per_family=2), max_steps=4, checkpoints=2,
              evaluate_sets=False)
    first = cached_lora_run(tiny_base, root=tmp_path / "lora", **kw)
    record = tmp_path / "lora" / "lora_run.json"
    stamp = record.stat().st_mtime_ns
    again = cached_lora_run(tiny_base, root=tmp_path / "lora", **kw)
    assert record.stat().st_mtime_ns == stamp  # read, not trained
    assert again.adapter_dir == first.adapter_dir and again.loss_history == first.loss_history
    assert again.checkpoint_dirs == first.checkpoint_dirs and len(again.checkpoint_dirs) == 2

    v1 = cached_variants(tiny_base, again, ["soup", "slerp"], device="cpu", root=tmp_path / "v")
    info = v1.info
    assert v1.n_checkpoints == 2
    assert set(v1) == {"base", "lora", "soup", "slerp"} and v1["soup"].name == f"{tiny_base.name}+soup"
    assert 0 <= info["slerp"]["share_tensors_slerp_is_lerp"] <= 1
    stamp = (tmp_path / "v" / "soup" / "model.safetensors").stat().st_mtime_ns
    v2 = cached_variants(tiny_base, again, ["soup", "slerp"], device="cpu", root=tmp_path / "v")
    assert (tmp_path / "v" / "soup" / "model.safetensors").stat().st_mtime_ns == stamp and v2.info == info
    assert v2["soup"].fingerprint == v1["soup"].fingerprint


def test_ctrl_c_during_lora_training_stops_at_once_and_leaves_nothing(tmp_path):
    """SIGINT (Ctrl-C) while the LoRA trains: the process stops within the step it is in, and neither the
    run's cache folder nor its temporary folder is left (a later run trains again instead of reading half)."""
    import signal
    import subprocess
    import sys
    import time

    model = tmp_path / "bert"
    root = tmp_path / "cache" / "lora" / "key"
    script = (
        "import sys\n"
        "from geomcheck.testing import tiny_model\n"
        "from geomcheck.models import load_model\n"
        "from geomcheck.adapt import WindowTask\n"
        "from geomcheck.adapt.cached import cached_lora_run\n"
        f"base = load_model(str(tiny_model('bert', {str(model)!r})), device='cpu')\n"
        "print('training', flush=True)\n"
        f"cached_lora_run(base, root={str(root)!r}, train_data=WindowTask(families=('prime', 'odd'), per_family=2),\n"
        "                max_steps=10**6, checkpoints=0, evaluate_sets=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "training", proc.stderr.read()
        tmp = root.parent / f".{root.name}.tmp-{proc.pid}"
        for _ in range(1200):  # until it trains into its temporary folder
            if tmp.is_dir() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert tmp.is_dir(), "training never started"
        time.sleep(1.0)  # a few steps in
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=120)[1]  # a hang guard, not a speed limit: it stops within a step
        print(f"stopped {time.perf_counter() - sent:.2f} s after SIGINT")  # for the notes; not asserted
    finally:
        proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert not root.exists() and list(root.parent.iterdir()) == []
