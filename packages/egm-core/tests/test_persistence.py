import hashlib
import json

import numpy as np
import pytest
import torch
import yaml
from egm_core import PyEGM


@pytest.fixture
def fitted(blobs):
    X, y, Xt, _ = blobs
    names = np.array(["a", "b", "c"])
    return PyEGM(platform="cpu", random_state=0).fit(X, names[y]), X, names[y], Xt


def test_round_trip(fitted, tmp_path):
    m, X, y, Xt = fitted
    m.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.yaml",
        "meta.json",
        "tensors.pt",
    ]
    m2 = PyEGM.load(tmp_path / "ckpt", platform="cpu")
    np.testing.assert_array_equal(m2.predict(Xt), m.predict(Xt))
    np.testing.assert_allclose(m2.predict_proba(Xt), m.predict_proba(Xt))
    assert m2.classes_.tolist() == ["a", "b", "c"]
    assert m2.history_ == m.history_
    assert m2.get_fitted_params() == m.get_fitted_params()
    for name in ("bank_X_", "bank_y_", "bank_seed_", "bank_generation_", "radius_"):
        assert torch.equal(getattr(m2, name), getattr(m, name))
    config = yaml.safe_load((tmp_path / "ckpt" / "config.yaml").read_text())
    assert config["resolved"]["path_k"] == m.get_fitted_params()["path_k"]
    assert json.loads((tmp_path / "ckpt" / "meta.json").read_text())["package"] == "egm-core"


def test_training_continues_identically_after_load(fitted, tmp_path):
    m, X, y, Xt = fitted
    m.save(tmp_path / "ckpt")
    m2 = PyEGM.load(tmp_path / "ckpt", platform="cpu")
    for model in (m, m2):
        model.continue_fit(extra_iters=2)
        model.partial_fit(X[:10], y[:10])
    assert torch.equal(m.bank_X_, m2.bank_X_)
    assert m2.history_ == m.history_
    m2.save(tmp_path / "ckpt")  # overwrite in place (atomic replace)
    np.testing.assert_array_equal(PyEGM.load(tmp_path / "ckpt").predict(Xt), m.predict(Xt))


def test_truncated_or_edited_checkpoint_is_refused(fitted, tmp_path):
    m, *_ = fitted
    path = m.save(tmp_path / "ckpt")
    data = (path / "tensors.pt").read_bytes()
    (path / "tensors.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="checksum"):
        PyEGM.load(path)
    path = m.save(tmp_path / "ckpt2")
    text = (path / "config.yaml").read_text().replace("path_k: ", "path_k: 1")
    (path / "config.yaml").write_text(text)
    with pytest.raises(ValueError, match="checksum"):
        PyEGM.load(path)
    with pytest.raises(FileNotFoundError):
        PyEGM.load(tmp_path / "nowhere")


def test_export_fixed_yaml_reproduces_predictions(fitted, tmp_path):
    m, X, y, Xt = fitted
    path = m.export_fixed_yaml(tmp_path / "cfg" / "fixed.yaml")
    data = yaml.safe_load(path.read_text())
    assert data["_meta"]["preset_resolved"] == m.preset_resolved_
    assert data["random_state"] == 0
    again = PyEGM(preset=str(path), platform="cpu").fit(X, y)
    np.testing.assert_array_equal(again.predict(Xt), m.predict(Xt))
    assert torch.equal(again.bank_X_, m.bank_X_)
    bare = m.export_fixed_yaml(tmp_path / "bare.yaml", include_meta=False)
    assert "_meta" not in yaml.safe_load(bare.read_text())


def test_export_reproduces_a_model_fitted_without_a_seed(blobs, tmp_path):
    X, y, Xt, _ = blobs
    m = PyEGM(platform="cpu").fit(X, y)
    path = m.export_fixed_yaml(tmp_path / "f.yaml")
    np.testing.assert_array_equal(
        PyEGM(preset=path, platform="cpu").fit(X, y).predict(Xt), m.predict(Xt)
    )


def test_unsavable_labels(blobs, tmp_path):
    X, y, _, _ = blobs
    labels = np.empty(len(y), dtype=object)
    labels[:] = [(int(v),) for v in y]
    m = PyEGM(platform="cpu", random_state=0, num_points=2).fit(X, labels)
    with pytest.raises(TypeError, match="cannot save label"):
        m.save(tmp_path / "x")


def test_numpy_scalar_parameters_save(blobs, tmp_path):
    X, y, Xt, _ = blobs
    m = PyEGM(
        platform="cpu", random_state=np.int64(4), num_points=np.int32(6), path_gamma=np.float32(0.5)
    )
    m.fit(X, y).save(tmp_path / "np")
    back = PyEGM.load(tmp_path / "np", platform="cpu")
    assert back.get_params()["random_state"] == 4 and back.get_params()["num_points"] == 6
    np.testing.assert_array_equal(back.predict(Xt), m.predict(Xt))


def test_load_asking_for_missing_cuda_falls_back_with_a_warning(fitted, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    m, X, y, Xt = fitted
    m.save(tmp_path / "c")
    with pytest.warns(UserWarning, match="loading the model on the CPU"):
        back = PyEGM.load(tmp_path / "c", platform="cuda")
    assert back.device_.type == "cpu"
    np.testing.assert_array_equal(back.predict(Xt), m.predict(Xt))
    with pytest.raises(ValueError, match="platform"):
        PyEGM.load(tmp_path / "c", platform="tpu")


def test_failed_export_leaves_no_temporary_file(fitted, tmp_path):
    m, *_ = fitted
    target = tmp_path / "taken.yaml"
    target.mkdir()  # a directory cannot be replaced by the YAML file
    with pytest.raises(OSError):
        m.export_fixed_yaml(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.yaml"]


def test_export_to_a_directory_names_it(fitted, tmp_path):
    # it was an IsADirectoryError naming a temporary file ".taken.tmp-<pid>"
    m, *_ = fitted
    with pytest.raises(IsADirectoryError, match=r"is a directory; export_fixed_yaml writes"):
        m.export_fixed_yaml(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_paths_that_are_not_paths_are_named(fitted):
    # None gave "expected str, bytes or os.PathLike object, not NoneType", naming no argument
    m, *_ = fitted
    for call, name in (
        (lambda: m.save(None), "directory"),
        (lambda: PyEGM.load(None), "directory"),
        (lambda: m.export_fixed_yaml(None), "path"),
        (lambda: m.save(3), "directory"),
    ):
        with pytest.raises(TypeError, match=f"^{name} must be a str or os.PathLike path, got"):
            call()


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float32])
def test_label_dtype_survives_a_round_trip(blobs, tmp_path, dtype):
    X, y, Xt, _ = blobs
    m = PyEGM(platform="cpu", random_state=0, num_points=4).fit(X, (y + 1).astype(dtype))
    back = PyEGM.load(m.save(tmp_path / "m"), platform="cpu")
    assert back.classes_.dtype == m.classes_.dtype == dtype
    assert back.predict(Xt).dtype == m.predict(Xt).dtype
    np.testing.assert_array_equal(back.predict(Xt), m.predict(Xt))


def _resign(path):
    """Recompute the checksums, as a hostile or buggy tool editing a checkpoint would."""
    meta = json.loads((path / "meta.json").read_text())
    for name in ("config.yaml", "tensors.pt"):
        meta["sha256"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / "meta.json").write_text(json.dumps(meta))


def _set(tensor, index, value):
    tensor[index] = value


@pytest.mark.parametrize(
    ("edit_config", "edit_tensors", "match"),
    [
        (None, lambda t: _set(t["bank_y_"], 0, -1), "bank_y_ holds codes"),
        (None, lambda t: t.update(bank_y_=t["bank_y_"].float()), "bank_y_ must be a torch.int64"),
        (None, lambda t: _set(t["bank_X_"], (0, 0), float("nan")), "bank_X_ holds NaN"),
        (None, lambda t: _set(t["bank_seed_"], -1, 10**6), "bank_seed_ of a synthetic"),
        (None, lambda t: _set(t["radius_"], 0, -1.0), "radius_ must hold finite values > 0"),
        (None, lambda t: _set(t["bank_energy_"], -1, -5.0), "bank_energy_"),
        (None, lambda t: t.update(class_sum_=t["class_sum_"][:, :2]), "class_sum_ must be"),
        (None, lambda t: t.update(bank_is_real_=torch.zeros_like(t["bank_is_real_"])), "real rows"),
        (
            None,
            lambda t: t.update(bank_is_real_=t["bank_is_real_"].flip(0)),
            "before the synthetic",
        ),
        (None, lambda t: t.pop("class_iters_"), "incomplete: no 'class_iters_'"),
        (lambda c: c.update(classes=["a", "a", "c"]), None, "duplicate labels"),
        (lambda c: c.update(classes="abc"), None, "classes must be a list"),
        (lambda c: c.update(classes=[["a"], "b", "c"]), None, r"classes holds \['a'\]"),
        (lambda c: c["resolved"].update(evil=1), None, r"unknown \['evil'\]"),
        (lambda c: c["resolved"].update(adaptive_radius_mode="fixed"), None, "fixed_radius"),
        (lambda c: c["params"].update(preset={"x": 1}), None, "params.preset"),
        (lambda c: c["state"].update(seed="abc"), None, "state.seed must be an int"),
        (lambda c: c.update(history=[1, 2]), None, "history must be a list of mappings"),
        (lambda c: c.update(n_features_in=3), None, r"bank_X_ must be .* shape \(\d+, 3\)"),
    ],
)
def test_edited_checkpoint_with_recomputed_checksums_is_refused(
    fitted, tmp_path, edit_config, edit_tensors, match
):
    m, *_ = fitted
    path = m.save(tmp_path / "ckpt")
    if edit_config is not None:
        config = yaml.safe_load((path / "config.yaml").read_text())
        edit_config(config)
        (path / "config.yaml").write_text(yaml.safe_dump(config))
    if edit_tensors is not None:
        tensors = torch.load(path / "tensors.pt", weights_only=True)
        edit_tensors(tensors)
        torch.save(tensors, path / "tensors.pt")
    _resign(path)
    with pytest.raises(ValueError, match=match):
        PyEGM.load(path, platform="cpu")


def test_float64_tensors_in_a_checkpoint_load_as_the_model_dtype(fitted, tmp_path):
    m, _, _, Xt = fitted
    path = m.save(tmp_path / "ckpt")
    tensors = torch.load(path / "tensors.pt", weights_only=True)
    tensors["bank_X_"] = tensors["bank_X_"].double()
    torch.save(tensors, path / "tensors.pt")
    _resign(path)
    back = PyEGM.load(path, platform="cpu")
    assert back.bank_X_.dtype == torch.float32
    np.testing.assert_array_equal(back.predict(Xt), m.predict(Xt))
