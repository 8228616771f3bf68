import re

import numpy as np
import pytest
import yaml
from egm_core import PRESET_NAMES, PyEGM, _config


def test_every_parameter_has_a_spec_and_a_constructor_argument():
    ctor = set(PyEGM._param_names())
    assert set(_config.SPECS) <= ctor
    assert ctor - set(_config.SPECS) == {"preset", "platform", "torch_q_block", "torch_db_block"}


@pytest.mark.parametrize("name", ["balanced_kshot", "imbalanced_kshot", "extreme_lowshot", "fscil"])
def test_shipped_presets_load_and_validate(name):
    values = _config._package_preset(name)
    assert values, name
    for key, value in values.items():
        assert _config.check_value(key, value) == value


def test_auto_rules():
    assert _config.auto_preset(np.array([50, 50, 40])) == "balanced_kshot"
    assert _config.auto_preset(np.array([90, 50, 10])) == "imbalanced_kshot"
    assert _config.auto_preset(np.array([50, 2, 40])) == "extreme_lowshot"


def test_auto_reports_what_it_picked(make_blobs):
    X, y = make_blobs((40, 40, 5))
    m = PyEGM(random_state=0, platform="cpu").fit(X, y)
    fitted = m.get_fitted_params()
    assert fitted["preset"] == "auto"
    assert fitted["preset_resolved"] == "imbalanced_kshot"
    assert set(_config.SPECS) <= set(fitted)


def test_user_value_beats_preset(blobs):
    X, y, _, _ = blobs
    m = PyEGM(preset="fscil", path_k=7, random_state=0, platform="cpu").fit(X, y)
    assert m.get_fitted_params()["path_k"] == 7
    assert m.get_fitted_params()["preset_resolved"] == "fscil"


def test_relative_yaml_path_is_read_from_the_working_directory(blobs, tmp_path, monkeypatch):
    X, y, _, _ = blobs
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"num_points": 6, "path_k": 9}))
    monkeypatch.chdir(tmp_path)
    m = PyEGM(preset="mine.yaml", random_state=0, platform="cpu").fit(X, y)
    assert m.get_fitted_params()["num_points"] == 6
    assert m.get_fitted_params()["preset_resolved"] == str(tmp_path / "mine.yaml")


def test_missing_yaml_is_an_error(blobs, tmp_path, monkeypatch):
    X, y, _, _ = blobs
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PyEGM(preset="nope.yaml", platform="cpu").fit(X, y)


def test_unknown_preset_and_unknown_yaml_key(blobs, tmp_path):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match="preset must be one of"):
        PyEGM(preset="turbo", platform="cpu").fit(X, y)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"num_pointz": 3}))
    with pytest.raises(ValueError, match="unknown parameter 'num_pointz'"):
        PyEGM(preset=str(bad), platform="cpu").fit(X, y)
    bad.write_text(yaml.safe_dump({"num_points": -3}))
    with pytest.raises(ValueError, match="num_points must be >= 1"):
        PyEGM(preset=str(bad), platform="cpu").fit(X, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_points": 0}, "num_points must be >= 1"),
        ({"total_energy": 0.0}, "total_energy must be > 0"),
        ({"mass": -1.0}, "mass must be > 0"),
        ({"noise_scale": -0.1}, "noise_scale must be >= 0"),
        ({"path_k": 0}, "path_k must be >= 1"),
        ({"path_step_size": 1.5}, "path_step_size must be <= 1"),
        ({"num_iters": 0}, "num_iters must be >= 1"),
        ({"step_weight_mode": "middle"}, "step_weight_mode must be one of"),
        ({"adaptive_radius_mode": "fixed"}, "needs fixed_radius"),
        ({"torch_q_block": 0}, "torch_q_block must be a positive int"),
        ({"platform": "tpu"}, "platform"),
        ({"random_state": -1}, "random_state must be >= 0"),
    ],
)
def test_bad_parameters_are_clear_errors(blobs, kwargs, match):
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match=match):
        PyEGM(**kwargs).fit(X, y)


def test_bad_parameter_types(blobs):
    X, y, _, _ = blobs
    with pytest.raises(TypeError, match="governor must be True or False"):
        PyEGM(governor="yes", platform="cpu").fit(X, y)
    with pytest.raises(TypeError, match="num_points must be an integer"):
        PyEGM(num_points=2.5, platform="cpu").fit(X, y)
    with pytest.raises(TypeError, match="preset must be"):
        PyEGM(preset=3, platform="cpu").fit(X, y)


def test_preset_names_exported():
    assert PRESET_NAMES == (
        "auto",
        "fscil",
        "balanced_kshot",
        "imbalanced_kshot",
        "extreme_lowshot",
    )


def test_exported_file_without_yaml_suffix_is_a_preset(blobs, tmp_path, monkeypatch):
    X, y, Xt, _ = blobs
    monkeypatch.chdir(tmp_path)
    m = PyEGM(random_state=0, platform="cpu").fit(X, y)
    path = m.export_fixed_yaml("fixed.cfg")  # a relative Path with another suffix
    for preset in (path, "fixed.cfg"):
        again = PyEGM(preset=preset, platform="cpu").fit(X, y)
        np.testing.assert_array_equal(again.predict(Xt), m.predict(Xt))


def test_malformed_yaml_preset_is_a_value_error(blobs, tmp_path):
    X, y, _, _ = blobs
    bad = tmp_path / "broken.yaml"
    bad.write_text("num_points: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        PyEGM(preset=bad, platform="cpu").fit(X, y)


@pytest.mark.parametrize("name", ["x" * 300, "~no_such_user_egm"])
def test_a_name_no_file_can_have_is_an_unknown_preset(blobs, name):
    # looking for a file of that name raised OSError (name too long) / RuntimeError (~user)
    X, y, _, _ = blobs
    with pytest.raises(ValueError, match="preset must be one of"):
        PyEGM(preset=name, platform="cpu").fit(X, y)


def test_fixed_radius_without_fixed_mode_warns_it_is_ignored(blobs):
    X, y, _, _ = blobs
    with pytest.warns(UserWarning, match=r"fixed_radius=2.0 is ignored: .* 'local'"):
        m = PyEGM(fixed_radius=2.0, random_state=0, platform="cpu").fit(X, y)
    assert (m.radius_ != 2.0).all()  # the measured radii are used, as the warning says
    fixed = PyEGM(fixed_radius=2.0, adaptive_radius_mode="fixed", random_state=0, platform="cpu")
    assert (fixed.fit(X, y).radius_ == 2.0).all()


def test_docstring_lists_the_package_defaults_and_what_presets_set():
    text = " ".join(PyEGM.__doc__.split("**Defaults.**")[1].split("\n\n")[0].split())
    head, _, listing = text.partition("):")
    documented = dict(re.findall(r"``(\w+)=([^`]+)``", listing))
    assert documented == {k: repr(s.default) for k, s in _config.SPECS.items()}
    set_by_presets = set()
    for name in PRESET_NAMES[1:]:
        set_by_presets |= set(_config._package_preset(name))
    assert set(re.findall(r"``(\w+)``", head)) == set_by_presets
