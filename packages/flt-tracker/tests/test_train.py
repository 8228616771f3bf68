import json

import pytest
from flt_tracker import load_run
from flt_tracker.train import compose_default, main, run

TINY = [
    "epochs=1",
    "data.n_train=512",
    "data.n_test=128",
    "logging.wandb=false",
    "tracking.frequency=1",
]


def test_compose_default_groups_and_overrides():
    cfg = compose_default()
    assert cfg["data"]["name"] == "sparse_coding" and cfg["model"]["name"] == "two_layer_srelu"
    assert cfg["logging"]["wandb"] == "auto" and cfg["tracking"]["enabled"] is True
    cfg = compose_default(["model=mlp", "data=gaussian", "optimizer.lr=0.1", "tracking=off"])
    assert cfg["model"]["hidden"] == [64, 64] and cfg["optimizer"]["lr"] == 0.1
    assert cfg["tracking"]["enabled"] is False
    with pytest.raises(ValueError, match="known option"):
        compose_default(["model=resnet"])
    with pytest.raises(KeyError, match="unknown key"):
        compose_default(["optimizer.lrr=1"])


def test_run_without_hydra_writes_run_metrics_and_summary(tmp_path):
    summary = run(compose_default(TINY + ["tracking.storage=disk"]), tmp_path)
    assert summary["global_step"] == 2  # 512 // 256 batches
    r = load_run(tmp_path / "run")
    W = r.get_feature("W")
    assert W.steps.tolist() == [0, 1, 2] and r.phases == [(0, "clean")]
    assert (tmp_path / "metrics.csv").read_text().startswith("step,epoch,loss")
    assert json.loads((tmp_path / "summary.json").read_text())["tracked"] == ["W"]


def test_preallocated_budget_from_the_config(tmp_path):
    cfg = compose_default(TINY + ["tracking.memory_budget=2MB", "tracking.preallocate=true"])
    assert cfg["tracking"]["preallocate"] is True
    assert run(cfg, tmp_path)["global_step"] == 2
    with pytest.raises(ValueError, match="preallocate"):  # nothing to reserve without a budget
        run(compose_default(TINY + ["tracking.preallocate=true"]), tmp_path / "b")


def test_cli_no_hydra_flag(tmp_path, capsys):
    main(
        [
            "--no-hydra",
            *TINY,
            "model=mlp",
            "data=gaussian",
            "tracking=off",
            f"output_dir={tmp_path}",
        ]
    )
    assert "val_accuracy" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not (tmp_path / "run").exists()


def test_hydra_multirun_sweep(tmp_path):
    pytest.importorskip("hydra", reason="the [hydra] extra is not installed")
    main(["-m", *TINY, "optimizer.lr=0.5,1.0", f"hydra.sweep.dir={tmp_path}"])
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name for p in runs] == ["0", "1"]
    lrs = []
    for p in runs:
        assert load_run(p / "run").get_feature("W").steps.tolist() == [0, 1, 2]
        lrs.append(json.loads((p / "summary.json").read_text())["global_step"])
    assert lrs == [2, 2]


def test_unknown_tracking_dtype_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="tracking.dtype='float64'"):
        run(compose_default(TINY + ["tracking.dtype=float64"]), tmp_path)
