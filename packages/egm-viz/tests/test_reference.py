"""What visualize_explosion draws, checked against independent references (scikit-learn PCA,
the model's own bank, trend paths and predictions)."""

import egm_viz
import numpy as np
import pytest
import torch
from egm_viz._output import class_colors, lighten
from egm_viz.explosion import _group_quotas
from sklearn.decomposition import PCA


def _artists(fig):
    return {a.get_gid(): a for a in fig.axes[0].get_children() if a.get_gid()}


@pytest.fixture
def drawn(model):
    fig = egm_viz.visualize_explosion(model, n_samples=10**6, show_energy_vectors=True, n_queries=3)
    bank = model.bank_X_.double().numpy()
    pca = PCA(2, svd_solver="full").fit(bank)
    ref = pca.transform(bank)
    arts = _artists(fig)
    # PCA's sign is free: align the reference to the drawn axes
    real0 = np.flatnonzero(model.bank_is_real_.numpy() & (model.bank_y_.numpy() == 0))
    sign = np.sign(np.sum(np.asarray(arts["real:0"].get_offsets()) * ref[real0], axis=0))
    return model, arts, ref * sign, pca, sign


def test_points_and_vectors_are_the_bank_in_the_scikit_learn_pca_plane(drawn):
    model, arts, ref, _, _ = drawn
    y, real = model.bank_y_.numpy(), model.bank_is_real_.numpy()
    gen, seed = model.bank_generation_.numpy(), model.bank_seed_.numpy()
    colors = class_colors(len(model.classes_))
    for c in range(len(model.classes_)):
        got = np.asarray(arts[f"real:{c}"].get_offsets())
        np.testing.assert_allclose(got, ref[real & (y == c)], atol=1e-9)
    n_gen = int(gen.max())
    for g in range(1, n_gen + 1):
        idx = np.flatnonzero(~real & (gen == g))
        np.testing.assert_allclose(arts[f"synthetic:{g}"].get_offsets(), ref[idx], atol=1e-9)
        shade = 0.55 * (g - 1) / max(n_gen - 1, 1)
        face = np.array([lighten(colors[c], shade) for c in y[idx]])
        face[:, 3] = 0.85  # the layer's alpha
        np.testing.assert_allclose(arts[f"synthetic:{g}"].get_facecolors(), face)
        q = arts[f"energy:{g}"]
        np.testing.assert_allclose(q.get_offsets(), ref[seed[idx]], atol=1e-9)
        np.testing.assert_allclose(np.c_[q.U, q.V], ref[idx] - ref[seed[idx]], atol=1e-9)
        np.testing.assert_allclose(q.get_facecolors()[:, :3], colors[y[idx], :3])


def test_paths_are_the_models_trend_paths_and_the_winner_is_its_prediction(drawn):
    model, arts, ref, pca, sign = drawn
    queries = np.asarray(arts["queries"].get_offsets())
    rows = [int(np.argmin(((ref - q) ** 2).sum(axis=1))) for q in queries]
    X = model.bank_X_[rows]
    out = model.trend_paths(X)
    predicted = model.predict(X.numpy())
    lines = [a for gid, a in arts.items() if gid.startswith("path:")]
    assert len(lines) == len(rows) * len(model.classes_)
    for line in lines:
        _, q, c, kind = line.get_gid().split(":")
        want = pca.transform(out["paths"][int(q), int(c)].double().numpy()) * sign
        np.testing.assert_allclose(line.get_xydata(), want, atol=1e-6)
        if kind == "winner":
            assert model.classes_[int(c)] == predicted[int(q)]


def test_lighten_blends_each_row_of_many_colours():
    colors = class_colors(5)
    np.testing.assert_array_equal(lighten(colors, 0.3), np.stack([lighten(c, 0.3) for c in colors]))
    np.testing.assert_array_equal(lighten(colors, 0.3)[:, 3], colors[:, 3])


def _per_group_reference(groups, n, generator):
    """stratified_subsample's draw written as one scan per group (the plain definition)."""
    total = len(groups)
    if total <= n:
        return np.arange(total)
    uniq, counts = np.unique(groups, return_counts=True)
    quota = _group_quotas(counts, n)
    picks = []
    for g, q in zip(uniq, quota):
        idx = np.flatnonzero(groups == g)
        picks.append(idx[torch.randperm(len(idx), generator=generator).numpy()[:q]])
    return np.sort(np.concatenate(picks))


@pytest.mark.parametrize("n_groups, n", [(1, 10), (7, 50), (300, 1000), (300, 100)])
def test_stratified_subsample_equals_the_per_group_draw(n_groups, n):
    groups = np.random.default_rng(n_groups).integers(0, n_groups, 3000) * 3 - 5
    got = egm_viz.stratified_subsample(groups, n, torch.Generator().manual_seed(4))
    want = _per_group_reference(groups, n, torch.Generator().manual_seed(4))
    np.testing.assert_array_equal(got, want)
