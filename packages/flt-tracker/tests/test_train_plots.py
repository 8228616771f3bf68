"""flt-train's ``plots`` figures and its start-up message for wandb without a login."""

import json
import sys

import pytest
from flt_tracker.train import compose_default, main, run

TINY = [
    "epochs=1",
    "data.n_train=512",
    "data.n_test=128",
    "logging.wandb=false",
    "tracking.frequency=1",
]


@pytest.mark.parametrize("hydra", [False, True])
def test_cli_writes_readable_figures_into_the_output_dir(tmp_path, hydra):
    image = pytest.importorskip("matplotlib.image")
    if hydra:
        pytest.importorskip("hydra")
    flags = [] if hydra else ["--no-hydra"]
    main([*flags, *TINY, "plots.formats=[png,svg]", f"output_dir={tmp_path}"])
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert figures == ["evolution_W.png", "evolution_W.svg", "heatmap.png", "heatmap.svg"]
    for name in ("evolution_W.png", "heatmap.png"):
        pixels = image.imread(tmp_path / "figures" / name)
        assert pixels.shape[0] > 0 and pixels.shape[1] > 0
    assert (tmp_path / "figures" / "heatmap.svg").read_text().rstrip().endswith("</svg>")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert sorted(summary["figures"]) == sorted(str(p) for p in (tmp_path / "figures").iterdir())


def test_plots_disabled_or_unchosen_write_no_figures(tmp_path):
    pytest.importorskip("matplotlib")
    main(["--no-hydra", *TINY, "plots.enabled=false", f"output_dir={tmp_path / 'off'}"])
    assert not (tmp_path / "off" / "figures").exists()
    assert "figures" not in json.loads((tmp_path / "off" / "summary.json").read_text())
    run(compose_default([*TINY, "plots.heatmap=false"]), tmp_path / "evo")
    assert [p.name for p in (tmp_path / "evo" / "figures").iterdir()] == ["evolution_W.png"]
    with pytest.raises(ValueError, match="plots.formats"):  # before any training
        run(compose_default([*TINY, "plots.formats=[pgn]"]), tmp_path / "bad")
    assert not (tmp_path / "bad" / "run").exists()


def test_plots_without_matplotlib_warn_and_train(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backend_bases", None)  # import fails
    with pytest.warns(UserWarning, match="plots.enabled=false"):
        summary = run(compose_default(TINY), tmp_path)
    assert summary["global_step"] == 2 and "figures" not in summary
    assert not (tmp_path / "figures").exists()


def test_wandb_without_login_names_the_options_that_fix_it(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_IDENTITY_TOKEN_FILE", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no saved settings
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing reachable
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("TERM", "dumb")  # no login prompt, even under pytest -s in a terminal
    argv = [a for a in TINY if not a.startswith("logging.wandb")]
    with pytest.raises(RuntimeError, match="not logged in") as info:
        main(["--no-hydra", *argv, "plots.enabled=false", f"output_dir={tmp_path / 'out'}"])
    assert "logging.wandb=false" in str(info.value)
    assert "logging.wandb_mode=offline" in str(info.value)
