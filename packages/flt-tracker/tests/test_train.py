import json
import math

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


def test_hydra_takes_output_dir_as_documented(tmp_path):
    # the docs name the folder with output_dir=PATH; under Hydra (the default) that was
    # "Key 'output_dir' is not in struct"
    pytest.importorskip("hydra", reason="the [hydra] extra is not installed")
    argv = [*TINY, "model=mlp", "data=gaussian", "tracking=off", "logging.csv=false"]
    main([*argv, f"output_dir={tmp_path / 'one'}"])
    assert json.loads((tmp_path / "one" / "summary.json").read_text())["global_step"] == 8
    main(["-m", *argv, "optimizer.lr=0.5,1.0", f"output_dir={tmp_path / 'sweep'}"])
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]


def test_unknown_tracking_dtype_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="tracking.dtype='float64'"):
        run(compose_default(TINY + ["tracking.dtype=float64"]), tmp_path)


def test_summary_json_is_strict_when_the_loss_diverges(tmp_path, capsys):
    def no_nan(token):
        raise ValueError(f"non-standard JSON {token}")

    cfg = compose_default(TINY + ["model=mlp", "data=gaussian", "optimizer.lr=1e30"])
    with pytest.warns(RuntimeWarning, match="training diverged"):
        assert math.isnan(run(cfg, tmp_path)["final"]["loss"])
    final = json.loads((tmp_path / "summary.json").read_text(), parse_constant=no_nan)["final"]
    assert final["loss"] is None and final["val_loss"] is None  # was NaN (not JSON)
    with pytest.warns(RuntimeWarning, match="training diverged"):
        main(["--no-hydra", *TINY, "model=mlp", "data=gaussian", "optimizer.lr=1e30",
              "tracking=off", f"output_dir={tmp_path / 'cli'}"])  # fmt: skip
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(printed, parse_constant=no_nan)["loss"] is None


def test_unclear_switches_and_values_are_errors_not_guesses(tmp_path):
    with pytest.raises(ValueError, match="logging.wandb='ture'"):  # was: wandb on ("auto")
        run(compose_default([*TINY, "logging.wandb=ture"]), tmp_path)
    with pytest.raises(ValueError, match="multirun"):  # was: lr='0.5,1', a TypeError in torch
        compose_default(["optimizer.lr=0.5,1"])
    with pytest.raises(ValueError, match="need Hydra"):  # was: "must look like key=value"
        compose_default(["-m", "optimizer.lr=1"])
    assert compose_default(["tracking.layers=[W]"])["tracking"]["layers"] == ["W"]
    assert compose_default(["optimizer.lr=1e-3"])["optimizer"]["lr"] == 0.001  # was '1e-3'
    with pytest.raises(TypeError, match="track_frequency"):  # was truncated to 2
        run(compose_default([*TINY, "tracking.frequency=2.5"]), tmp_path / "f")
    with pytest.raises(TypeError, match="num_epochs"):  # was truncated to 1
        run(compose_default([*TINY, "epochs=1.5"]), tmp_path / "e")


def test_only_the_main_process_writes_the_summary(tmp_path, monkeypatch):
    # under torchrun every rank runs this; a rank other than 0 tracks nothing and must not
    # overwrite rank 0's summary.json (which names the run)
    from flt_tracker.trainer import Trainer

    monkeypatch.setattr(Trainer, "is_main_process", property(lambda self: False))
    summary = run(compose_default(TINY), tmp_path)
    assert summary["global_step"] == 2 and "run" not in summary
    assert not (tmp_path / "summary.json").exists()


def test_only_rank_zero_prints_the_final_metrics(tmp_path, monkeypatch, capsys):
    # under torchrun every rank runs main(); was: each rank printed the JSON line
    from flt_tracker import train

    argv = ["--no-hydra", *TINY, "model=mlp", "data=gaussian", "tracking=off"]
    monkeypatch.setattr(train, "_rank_and_world", lambda: (1, 2))
    main([*argv, f"output_dir={tmp_path / 'r1'}"])
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(train, "_rank_and_world", lambda: (0, 2))
    main([*argv, f"output_dir={tmp_path / 'r0'}"])
    assert "val_accuracy" in json.loads(capsys.readouterr().out)


def test_summary_json_is_replaced_atomically(tmp_path, monkeypatch):
    from pathlib import Path

    argv = [*TINY, "model=mlp", "data=gaussian", "tracking=off", "logging.csv=false"]
    run(compose_default(argv), tmp_path)
    before = (tmp_path / "summary.json").read_text()
    write_text = Path.write_text

    def interrupted(self, text, *args, **kwargs):
        write_text(self, text[:10], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):  # was: summary.json left holding 10 characters
        run(compose_default([*argv, "optimizer.lr=0.5"]), tmp_path)
    assert (tmp_path / "summary.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_data_sizes_that_cannot_train_are_clear_errors(tmp_path):
    # were: "torch.cat(): expected a non-empty list" and "the training loader yielded no batches"
    with pytest.raises(ValueError, match="data.n_train=0 must be a positive integer"):
        run(compose_default([*TINY, "data.n_train=0"]), tmp_path)
    with pytest.raises(ValueError, match="data.n_train=100 .* data.batch_size=256"):
        run(compose_default([*TINY, "data.n_train=100"]), tmp_path)
    assert not (tmp_path / "summary.json").exists()


def test_fractional_pgd_steps_are_refused_not_truncated(tmp_path):
    argv = [*TINY, "adversarial.enabled=true", "adversarial.attack=pgd", "adversarial.steps=2.5"]
    with pytest.raises(ValueError, match=r"steps=2.5 must be an integer"):  # was 2 steps
        run(compose_default(argv), tmp_path)


def test_cli_without_hydra_gives_each_run_its_own_folder(tmp_path, monkeypatch, capsys):
    # was: every run wrote outputs/flt-train; a second memory run replaced the first, a second
    # disk run stopped with FileExistsError
    monkeypatch.chdir(tmp_path)
    argv = ["--no-hydra", *TINY, "model=mlp", "data=gaussian", "tracking.storage=disk"]
    main(argv)
    main(argv)
    runs = sorted((tmp_path / "outputs" / "flt-train").iterdir())
    assert len(runs) == 2
    for p in runs:
        summary = json.loads((p / "summary.json").read_text())
        steps = load_run(p / "run").get_feature("0.weight").steps.tolist()
        assert tmp_path / summary["run"] == p / "run"
        assert steps == list(range(summary["global_step"] + 1))
    with pytest.raises(ValueError, match="known option"):  # a bad override: no empty folder
        main(["--no-hydra", "model=resnet"])
    assert len(list((tmp_path / "outputs" / "flt-train").iterdir())) == 2
    main(["--no-hydra", "--help"])
    assert "outputs/flt-train/<date>_<time>" in capsys.readouterr().out


def test_bad_adversarial_settings_are_named(tmp_path):
    # was "could not convert string to float: 'abc'", naming no option
    cfg = compose_default([*TINY, "adversarial.enabled=true", "adversarial.eps=abc"])
    with pytest.raises(TypeError, match=r"adversarial.eps='abc' must be a number"):
        run(cfg, tmp_path)
    cfg = compose_default([*TINY, "adversarial.enabled=true", "adversarial.attack=fgsm"])
    with pytest.raises(ValueError, match=r"adversarial.attack='fgsm'; use 'fgm' or 'pgd'"):
        run(cfg, tmp_path)  # was "kind='fgsm' is not supported", an argument the CLI never names
