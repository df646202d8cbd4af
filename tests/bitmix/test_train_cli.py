"""`bitmix train-reference`: argument parsing in bitmix/, the training in golden/."""

import json

from bitmix.cli import main
from golden.checkpoint import load_model
from golden.train_reference import ARCH, TrainConfig


def test_short_run_writes_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "ref"
    assert main(["train-reference", "--out", str(out), "--steps", "2", "--batch", "2", "--seqlen", "64",
                 "--eval-every", "2", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("params ") and len(lines) == 3          # header, 1 eval, summary
    log = json.loads((out / "training_log.json").read_text())
    assert [r["step"] for r in log["log"]] == [2]
    assert log["args"] == {"out": str(out), "steps": 2, "batch": 2, "seqlen": 64, "lr": 2e-3, "warmup": 50,
                           "weight_decay": 0.1, "seed": 0, "threads": 1, "eval_every": 2}
    assert log["tokens_seen"] == 2 * 2 * 64
    model = load_model(out)
    assert model.config.hidden_size == ARCH["hidden_size"] and log["params"] > 2_000_000


def test_defaults_are_the_shipped_run_and_bad_values_are_named(capsys):
    import argparse

    from bitmix import cmd_train
    sub = argparse.ArgumentParser().add_subparsers()
    cmd_train.register(sub)
    args = sub.choices["train-reference"].parse_args(["--out", "x"])
    assert args.steps == TrainConfig().steps == 700 and args.lr == 2e-3 and args.threads == 2
    assert main(["train-reference", "--out", "x", "--steps", "0"]) == 2
    assert capsys.readouterr().err == "bitmix: error: --steps must be at least 1, got 0\n"
