"""Tracked records, derived series, epoch metrics and dictionary metrics against independent
float64 references: a hand-written training loop and numpy formulas."""

import numpy as np
import torch
from flt_tracker import FeatureTracker, FeatureTrackingCallback, Trainer, analysis
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)).double()


def _data():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(23, 5, generator=g, dtype=torch.float64)  # batches of 5: the last has 3
    return X, torch.randint(0, 3, (23,), generator=g), torch.randn(6, 5, generator=g).double()


def _tracker(model, optimizer, probe, every):
    """Weights and gradients of layer 0 and the probe's activations of layer 1, every ``every`` steps."""
    return FeatureTracker(
        model,
        layers=["0"],
        track_gradients=True,
        track_frequency=every,
        track_activations=["1"],
        probe=probe,
        optimizer=optimizer,
    )


def test_records_and_epoch_metrics_equal_a_hand_written_loop():
    X, y, probe = _data()
    batch, clip, every = 5, 0.5, 2
    # the reference: a plain loop, snapshots taken by hand after every 2nd optimizer step
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    weights, grads, acts, losses, accs = [], [], [], [], []

    def snapshot():
        weights.append(model[0].weight.detach().numpy().copy())
        with torch.no_grad():
            acts.append(torch.relu(model[0](probe)).numpy().copy())

    snapshot()
    step = 0
    for _ in range(3):
        ls, cs, ns = [], [], []
        for i in range(0, len(X), batch):
            # stacked row by row as the DataLoader collates (the same memory layout)
            xb, yb = torch.stack(list(X[i : i + batch])), y[i : i + batch]
            opt.zero_grad()
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            grad = model[0].weight.grad.numpy().copy()
            opt.step()
            step += 1
            if step % every == 0:
                snapshot()
                grads.append(grad)
            ls.append(loss.item())
            cs.append(int((out.argmax(1) == yb).sum()))
            ns.append(len(xb))
        losses.append(np.dot(ls, ns) / sum(ns))
        accs.append(sum(cs) / sum(ns))

    model2 = _model()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.3, momentum=0.9)
    tracker = _tracker(model2, opt2, probe, every)
    trainer = Trainer(
        model2,
        opt2,
        callbacks=[FeatureTrackingCallback(tracker)],
        metrics={"acc": "accuracy"},
        grad_clip=clip,
        device="cpu",
    )
    history = trainer.fit(DataLoader(TensorDataset(X, y), batch_size=batch), 3)

    w = tracker.get_feature("0.weight")
    np.testing.assert_array_equal(w.as_tensor().numpy(), np.stack(weights))
    np.testing.assert_array_equal(tracker.get_feature("0.weight.grad").as_tensor(), grads)
    np.testing.assert_array_equal(tracker.get_feature("1.output").as_tensor(), acts)
    assert w.steps.tolist() == list(range(0, 15, 2))  # 5 batches x 3 epochs, every 2nd
    assert w.epochs.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert w.batch_indices.tolist() == [-1, 1, 3, 0, 2, 4, 1, 3]
    assert tracker.get_feature("0.weight.grad").steps.tolist() == list(range(2, 15, 2))
    np.testing.assert_allclose([h["loss"] for h in history], losses, rtol=1e-15)
    np.testing.assert_allclose([h["acc"] for h in history], accs, rtol=1e-7)  # float32 fractions


def test_derived_series_equal_numpy_formulas():
    X, y, _ = _data()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    tracker = FeatureTracker(model, layers=["0"], optimizer=opt)
    with tracker:
        for i in range(6):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[i::3]), y[i::3]).backward()
            opt.step()
    f = tracker.get_feature("0.weight")
    W = f.as_tensor().numpy()
    flat = W.reshape(len(W), -1)
    init = flat[0]
    dist = np.linalg.norm(flat - init, axis=1)
    cos = flat @ init / (np.linalg.norm(flat, axis=1) * np.linalg.norm(init))

    def erank(m):
        s = np.linalg.svd(m, compute_uv=False)
        p = s / s.sum()
        return np.exp(-(p * np.log(p)).sum())

    tol = {"rtol": 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(f.norm(), np.linalg.norm(flat, axis=1), **tol)
    np.testing.assert_allclose(f.mean(), flat.mean(1), **tol)
    np.testing.assert_allclose(f.std(), flat.std(1, ddof=1), **tol)  # Bessel-corrected
    np.testing.assert_allclose(f.cosine_to_init(), cos, **tol)
    np.testing.assert_allclose(f.distance_to_init(), dist, **tol)
    np.testing.assert_allclose(
        f.distance_to_init(relative=True), dist / np.linalg.norm(init), **tol
    )
    np.testing.assert_allclose(f.effective_rank(), [erank(m) for m in W], **tol)


def test_dictionary_metrics_equal_numpy_formulas():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4, 6))  # (steps, neurons, d)
    M = np.linalg.qr(rng.normal(size=(6, 6)))[0][:, :5]  # 5 orthonormal atoms
    w_star = rng.choice([-1.0, 1.0], 5)
    C = np.abs(W @ M) / np.linalg.norm(W, axis=-1, keepdims=True)
    P = C**2 / (C**2).sum(-1, keepdims=True)
    direction = M @ w_star
    dense = np.abs(W @ direction) / (np.linalg.norm(W, axis=-1) * np.linalg.norm(direction))
    tol = {"rtol": 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(analysis.dictionary_correlations(W, M), C, **tol)
    np.testing.assert_allclose(analysis.purity(W, M), C.max(-1), **tol)
    np.testing.assert_allclose(analysis.participation_ratio(W, M), 1 / (P**2).sum(-1), **tol)
    np.testing.assert_allclose(analysis.dense_mixture_weight(W, M, w_star), dense, **tol)
    np.testing.assert_array_equal(analysis.atoms_above(W, M, 0.3), (C > 0.3).sum(-1))
    top = -np.sort(-C, axis=-1)[..., :3]
    np.testing.assert_allclose(analysis.sorted_atom_profile(W, M, top=3), top, **tol)
    B = rng.normal(size=W.shape)
    rows = np.abs((W * B).sum(-1)) / (np.linalg.norm(W, axis=-1) * np.linalg.norm(B, axis=-1))
    np.testing.assert_allclose(
        analysis.cosine_rows(torch.from_numpy(W), torch.from_numpy(B)), rows, **tol
    )


def test_fits_in_pieces_record_what_one_fit_records():
    X, y, probe = _data()

    def run(pieces):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        tracker = _tracker(model, opt, probe, 3)
        loader = DataLoader(TensorDataset(X, y), batch_size=5, shuffle=True)
        trainer = Trainer(
            model, opt, callbacks=[FeatureTrackingCallback(tracker)], seed=5, device="cpu"
        )
        for n in pieces:
            trainer.fit(loader, n)
        series = {
            name: (f.as_tensor().numpy(), f.steps, f.epochs, f.batch_indices)
            for name, f in tracker.get_features().items()
        }
        return series, [h["loss"] for h in trainer.history]

    whole, losses = run([4])
    split, split_losses = run([1, 3])
    assert split_losses == losses
    assert whole.keys() == split.keys()
    for name in whole:
        for a, b in zip(whole[name], split[name]):
            np.testing.assert_array_equal(a, b)


def test_dictionary_metrics_keep_float64_weights_with_a_float32_dictionary():
    # make_sparse_coding's dictionary is float32: float64 weights were rounded to float32
    rng = np.random.default_rng(1)
    W = rng.normal(size=(4, 6)) * 1e3
    M = np.linalg.qr(rng.normal(size=(6, 6)))[0].astype(np.float32)
    w_star = np.ones(6, dtype=np.float32)
    Md = M.astype(np.float64)
    C = np.abs(W @ Md) / np.linalg.norm(W, axis=-1, keepdims=True)
    corr = analysis.dictionary_correlations(torch.from_numpy(W), torch.from_numpy(M))
    assert corr.dtype == torch.float64
    np.testing.assert_allclose(corr, C, rtol=1e-13)
    dense = analysis.dense_mixture_weight(W, M, w_star)
    direction = Md @ w_star
    expected = np.abs(W @ direction) / (np.linalg.norm(W, axis=-1) * np.linalg.norm(direction))
    assert dense.dtype == torch.float64
    np.testing.assert_allclose(dense, expected, rtol=1e-13)
