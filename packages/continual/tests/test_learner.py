import pytest
import torch
import torch.nn.functional as F
from continual import ContinualLearner, EpisodicMemory, MLPAutoencoder, empirical_fisher
from torch import nn


class Net(ContinualLearner):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 3)
        self.frozen_head = nn.Linear(6, 2)  # never used in forward: no grad

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class SeqNet(ContinualLearner, nn.Sequential):
    pass


def _data(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _naive_fisher(model, X, y, loss):
    out = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(X)):
        model.zero_grad()
        loss(model.model_output(model(X[i : i + 1])), y[i : i + 1]).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                out[n] += p.grad**2
    return {n: v / len(X) for n, v in out.items()}


@pytest.mark.parametrize("method", ["vmap", "loop"])
def test_fisher_equals_naive_per_sample_loop(method):
    torch.manual_seed(0)
    model = Net()
    X, y = _data(23)
    fisher = model.estimate_fisher((X, y), F.cross_entropy, batch_size=5, method=method)
    ref = _naive_fisher(model, X, y, F.cross_entropy)
    for n in fisher:
        torch.testing.assert_close(fisher[n], ref[n], rtol=1e-5, atol=1e-8)
    assert fisher["frozen_head.weight"].abs().sum() == 0
    # not the squared batch gradient
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    assert not torch.allclose(fisher["fc1.weight"], model.fc1.weight.grad**2)


def test_fisher_vmap_chunks_bound_the_per_sample_gradients_held_at_once(monkeypatch):
    import continual.learner as learner

    torch.manual_seed(0)
    model = Net()
    X, y = _data(23)
    ref = _naive_fisher(model, X, y, F.cross_entropy)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    monkeypatch.setattr(learner, "_FISHER_CHUNK_ELEMENTS", 4 * n_params)  # 4 rows a chunk
    rows = []
    inner = learner.per_sample_squared_grads
    monkeypatch.setattr(
        learner,
        "per_sample_squared_grads",
        lambda m, x, *a, **k: rows.append(len(x)) or inner(m, x, *a, **k),
    )
    fisher = empirical_fisher(model, (X, y), F.cross_entropy, batch_size=10)
    assert rows == [4, 4, 2, 4, 4, 2, 3]  # batches of 10, 10, 3 cut into chunks of 4
    for n in fisher:
        torch.testing.assert_close(fisher[n], ref[n], rtol=1e-5, atol=1e-8)


def test_ewc_loss_nonzero_after_task_with_default_gamma():
    torch.manual_seed(0)
    model = Net()  # separate EWC, defaults
    assert model.ewc_loss().item() == 0.0
    X, y = _data()
    model.estimate_fisher((X, y), F.cross_entropy)
    assert model.ewc_loss().item() == 0.0  # at the anchor
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    loss = model.ewc_loss()
    assert loss.item() > 0
    loss.backward()  # differentiable
    assert model.fc1.weight.grad.abs().sum() > 0
    # equals the formula
    F_ = model._ewc.terms[0]["fisher"]
    expected = 0.5 * sum((F_[n] * 0.25).sum() for n in F_)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not any("EWC" in k or "ewc" in k for k in model.state_dict())


def test_separate_and_online_ewc():
    torch.manual_seed(0)
    sep = Net()
    onl = Net(onlineEWC=True, gamma=0.5)
    onl.load_state_dict(sep.state_dict())
    X1, y1 = _data(seed=1)
    X2, y2 = _data(seed=2)
    f1 = sep.estimate_fisher((X1, y1), F.cross_entropy)
    onl.estimate_fisher((X1, y1), F.cross_entropy)
    with torch.no_grad():
        for m in (sep, onl):
            for p in m.parameters():
                p.add_(0.1)
    f2 = sep.estimate_fisher((X2, y2), F.cross_entropy)
    onl.estimate_fisher((X2, y2), F.cross_entropy)
    assert len(sep._ewc) == 2 and len(onl._ewc) == 1
    merged = onl._ewc.terms[0]["fisher"]
    for n in merged:
        torch.testing.assert_close(merged[n], f2[n] + 0.5 * f1[n])
    assert sep.EWC_task_count == onl.EWC_task_count == 2


class _Lin(ContinualLearner, nn.Linear):
    """A linear layer with the EWC bookkeeping mixed in."""


_FISHERS = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 1.0]]), torch.tensor([[0.5, 4.0]])]


def _consolidate_three(model, switch_at=None):
    for t, f in enumerate(_FISHERS):
        if t == switch_at:
            model.onlineEWC = not model.onlineEWC
        with torch.no_grad():
            model.weight.fill_(float(t))
        model.consolidate({"weight": f})


def test_online_ewc_recursion_over_three_tasks_matches_hand_computation():
    # Schwarz et al. 2018: F <- gamma F_old + F_new, one anchor at the newest parameters
    model = _Lin(2, 1, bias=False, onlineEWC=True, gamma=0.5)
    _consolidate_three(model)
    expected = 0.5 * (0.5 * _FISHERS[0] + _FISHERS[1]) + _FISHERS[2]  # [[2.25, 5.0]]
    (term,) = model._ewc.terms
    torch.testing.assert_close(term["fisher"]["weight"], expected)
    torch.testing.assert_close(term["anchor"]["weight"], torch.full((1, 2), 2.0))
    with torch.no_grad():
        model.weight.fill_(3.0)
    assert model.ewc_loss().item() == pytest.approx(0.5 * expected.sum().item())


def test_switch_separate_to_online_folds_every_separate_term():
    # two separate terms, then online: both are folded (the second was dropped before)
    switched = _Lin(2, 1, bias=False, gamma=0.5)
    _consolidate_three(switched, switch_at=2)
    (term,) = switched._ewc.terms
    expected = 0.5 * (0.5 * _FISHERS[0] + _FISHERS[1]) + _FISHERS[2]
    torch.testing.assert_close(term["fisher"]["weight"], expected)
    torch.testing.assert_close(term["anchor"]["weight"], torch.full((1, 2), 2.0))
    # online, then separate: the online term is kept and a new term is appended
    back = _Lin(2, 1, bias=False, onlineEWC=True, gamma=0.5)
    _consolidate_three(back, switch_at=2)
    first, second = back._ewc.terms
    torch.testing.assert_close(first["fisher"]["weight"], 0.5 * _FISHERS[0] + _FISHERS[1])
    torch.testing.assert_close(first["anchor"]["weight"], torch.full((1, 2), 1.0))
    torch.testing.assert_close(second["fisher"]["weight"], _FISHERS[2])
    assert back.EWC_task_count == switched.EWC_task_count == 3


def test_consolidating_a_fisher_of_unknown_parameters_is_refused_by_name():
    model = _Lin(2, 1, bias=False)
    with pytest.raises(ValueError, match=r"fisher names \['fc.weight'\] .* among \['weight'\]"):
        model.consolidate({"fc.weight": torch.ones(1, 2)})  # was a KeyError in ewc_loss()
    assert model.EWC_task_count == 0 and model.ewc_loss().item() == 0.0


def test_ewc_loss_of_a_float64_model_is_float64_before_and_after_a_task():
    model = _Lin(2, 1, bias=False).double()
    assert model.ewc_loss().dtype == torch.float64  # the zero was float32
    model.consolidate({"weight": torch.ones(1, 2, dtype=torch.float64)})
    assert model.ewc_loss().dtype == torch.float64


def test_agem_methods_any_module_and_frozen_params():
    torch.manual_seed(0)
    model = Net()
    X, y = _data(30)
    mem = EpisodicMemory(10, random_state=0)
    mem.add(X[:10], y[:10], task_id=0)
    with pytest.raises(ValueError, match="empty"):
        EmptyNet = Net()
        EmptyNet.calculate_ref_gradients(EpisodicMemory(5), F.cross_entropy)
    for _ in range(5):
        model.calculate_ref_gradients(mem, F.cross_entropy, b_size=8)
        model.zero_grad()
        F.cross_entropy(model(X[10:]), (y[10:] + 1) % 3).backward()
        model.overwrite_grad()
        g = torch.cat(
            [
                (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                for p in model.parameters()
            ]
        )
        assert torch.dot(g, model._ref_grad) >= -1e-5


def test_layerwise_agem_each_layer_non_negative():
    torch.manual_seed(0)
    model = SeqNet(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    X, y = _data(30)
    model.calculate_ref_gradients_layerwise((X[:10], y[:10]), F.cross_entropy, loss_lambda=3.0)
    model.zero_grad()
    F.cross_entropy(model(X[10:]), (y[10:] + 1) % 3).backward()
    model.overwrite_grad_layerwise()
    for n, p in model.named_parameters():
        assert torch.dot(p.grad.reshape(-1), model._ref_grads_layerwise[n]) >= -1e-5


def test_reconstruction_loss_autoencoder():
    torch.manual_seed(0)
    ae = MLPAutoencoder(6, hidden=(5,), latent_size=2)
    X = torch.randn(12, 6)
    fisher = ae.estimate_fisher(X, F.mse_loss, target="input")
    assert all(torch.isfinite(f).all() for f in fisher.values())
    assert sum(f.sum() for f in fisher.values()) > 0
    ref = ae.calculate_ref_gradients(X[:4], F.mse_loss)
    assert ref.item() > 0


def test_tuple_output_needs_output_index():
    class Bad(ContinualLearner):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return self.fc(x), None

    with pytest.raises(TypeError, match="output_index"):
        Bad().estimate_fisher(torch.randn(3, 2), F.mse_loss, method="loop")


def test_empirical_fisher_plain_module_and_state_roundtrip():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3))
    X, y = _data(9)
    fisher = empirical_fisher(net, (X, y), F.cross_entropy)
    assert set(fisher) == {"0.weight", "0.bias"}
    model = Net(onlineEWC=True, gamma=0.3)
    model.estimate_fisher((X, y), F.cross_entropy)
    config, tensors = model.cl_state_dict()
    other = Net()
    other.load_state_dict(model.state_dict())
    other.load_cl_state_dict(config, tensors)
    with torch.no_grad():
        for m in (model, other):
            for p in m.parameters():
                p.add_(0.2)
    assert other.ewc_loss().item() == pytest.approx(model.ewc_loss().item())
    assert other.onlineEWC and other.gamma == 0.3


def test_bad_arguments_raise_early():
    model = Net()
    X, y = _data(12)
    mem = EpisodicMemory(10, random_state=0)
    mem.add(X[:10], y[:10], task_id=0)
    for b in (0, -3):  # 0 used to mean "all of it", -3 "all but three"
        with pytest.raises(ValueError, match="b_size"):
            model.calculate_ref_gradients(mem, F.cross_entropy, b_size=b)
    with pytest.raises(ValueError, match="loss_lambda"):
        model.calculate_ref_gradients_layerwise((X, y), F.cross_entropy, loss_lambda=-1.0)
    with pytest.raises(ValueError, match="batch_size"):
        model.estimate_fisher((X, y), F.cross_entropy, batch_size=0)
    with pytest.raises(ValueError, match=r"share the first dimension, got \[12, 5\]"):
        model.estimate_fisher((X, y[:5]), F.cross_entropy)
    with pytest.raises(ValueError, match="ewc_lambda"):
        Net(ewc_lambda=-1.0)
    assert len(model._ewc) == 0


def test_fisher_of_non_finite_data_is_refused():
    model = Net()
    X, y = _data(8)
    X[3, 1] = float("nan")
    for method in ("vmap", "loop"):
        with pytest.raises(ValueError, match="not finite"):
            model.estimate_fisher((X, y), F.cross_entropy, method=method)
    assert len(model._ewc) == 0 and model.ewc_loss().item() == 0.0  # nothing consolidated


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"gamma": float("nan")}, "gamma"),
        ({"gamma": "0.9"}, "gamma"),
        ({"ewc_lambda": -1}, "ewc_lambda"),
    ],
)
def test_learner_hyper_parameters_are_checked_by_name(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number"):
        Net(**kwargs)


def test_max_samples_zero_is_refused_by_name():
    X, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    # used to report "data_set is empty" for a non-empty data set
    with pytest.raises(ValueError, match="^max_samples must be an integer >= 1"):
        empirical_fisher(Net(), (X, y), F.cross_entropy, max_samples=0)


def test_reference_gradient_on_a_memory_of_codes():
    torch.manual_seed(0)
    ae = MLPAutoencoder(6, (8,), 3)
    z = torch.randn(5, 3)
    rt = ae.from_dec_to_enc(z)  # decode then encode, as in the original: back to codes
    assert rt.shape == (5, 3)
    torch.testing.assert_close(rt, ae.encoder(ae.decoder(z)))
    mem = EpisodicMemory(10, random_state=0)
    mem.add(z)
    loss = ae.calculate_ref_gradients(mem, F.mse_loss, store_encoded=True)
    ae.zero_grad()
    F.mse_loss(ae.encoder(ae.decoder(z)), z).backward()
    g = torch.cat([p.grad.reshape(-1) for p in ae.parameters()])
    torch.testing.assert_close(ae._ref_grad, g)
    assert loss.item() == pytest.approx(F.mse_loss(rt, z).item())
    ae.calculate_ref_gradients_layerwise(z, F.mse_loss, store_encoded=True)
    with pytest.raises(TypeError, match="from_dec_to_enc"):
        Net().calculate_ref_gradients(torch.randn(4, 4), F.mse_loss, store_encoded=True)


def test_online_ewc_gamma_above_one_is_refused():
    # gamma decays the old Fisher (Schwarz et al. 2018): > 1 would weigh old tasks above the new
    from continual import EWC, EWCTerms

    for make in (
        lambda g: Net(onlineEWC=True, gamma=g),
        lambda g: EWC(1.0, mode="online", gamma=g),
        lambda g: EWCTerms(online=True, gamma=g),
    ):
        with pytest.raises(
            ValueError, match=r"^gamma must be a finite number in \[0, 1\], got 1.5"
        ):
            make(1.5)
        make(0.0), make(1.0)  # the bounds are valid


def test_non_integer_batch_sizes_are_refused_by_name():
    model = Net()
    X, y = _data(12)
    mem = EpisodicMemory(10, random_state=0)
    mem.add(X[:10], y[:10], task_id=0)
    # b_size=2.5 used to draw 2 rows silently; batch_size=2.5 failed inside torch
    with pytest.raises(ValueError, match=r"^b_size must be an integer >= 1 or None, got 2.5"):
        model.calculate_ref_gradients(mem, F.cross_entropy, b_size=2.5)
    with pytest.raises(ValueError, match=r"^b_size must be an integer"):
        model.calculate_ref_gradients_layerwise(mem, F.cross_entropy, b_size=True)
    for data in (X, (X, y)):
        with pytest.raises(ValueError, match=r"^batch_size must be an integer >= 1, got 2.5"):
            model.estimate_fisher(data, F.cross_entropy, batch_size=2.5)


def test_float64_inputs_match_float32_for_fisher_and_reference_gradients():
    # the Trainer casts float64 data to the model's dtype; these raised a dtype mismatch
    X, y = _data()
    net = Net()
    f32 = net.estimate_fisher((X, y), F.cross_entropy, consolidate=False)
    f64 = net.estimate_fisher((X.double(), y), F.cross_entropy, consolidate=False)
    for n in f32:
        assert f64[n].dtype == torch.float32
        torch.testing.assert_close(f64[n], f32[n])
    net.calculate_ref_gradients((X, y), F.cross_entropy)
    ref32 = net._ref_grad.clone()
    net.calculate_ref_gradients((X.double(), y), F.cross_entropy)
    torch.testing.assert_close(net._ref_grad, ref32)


def test_non_finite_reference_gradient_is_refused():
    # a NaN reference gradient made overwrite_grad write NaN into every parameter's .grad
    X, y = _data()
    net = Net()
    net.calculate_ref_gradients((X, y), F.cross_entropy)
    ref = net._ref_grad.clone()
    X[2, 0] = float("nan")
    for compute in (net.calculate_ref_gradients, net.calculate_ref_gradients_layerwise):
        with pytest.raises(ValueError, match="reference gradient is not finite"):
            compute((X, y), F.cross_entropy)
    assert torch.equal(net._ref_grad, ref)  # the previous reference is kept


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("ewc.0.fisher.fc1.weight", torch.ones(1), r"\(1,\) fits no parameter"),
        ("ewc.0.fisher.nope", torch.ones(3), "fits no parameter"),
        ("ewc.0.gradient.fc1.bias", torch.ones(6), "fits no parameter"),
        ("ewc.4.fisher.fc1.bias", torch.ones(6), "not of a term < 1"),
    ],
)
def test_a_corrupted_ewc_state_is_refused_before_loading(key, value, match):
    # a (1,) Fisher broadcast silently over the (6, 4) weight; a bad term index was an IndexError
    X, y = _data()
    net = Net()
    net.estimate_fisher((X, y), F.cross_entropy)
    config, tensors = net.cl_state_dict()
    tensors = {**tensors, key: value}
    other = Net()
    with pytest.raises(ValueError, match=match):
        other.load_cl_state_dict(config, tensors)
    assert other.EWC_task_count == 0 and float(other.ewc_loss()) == 0.0
    lone = {k: v for k, v in net.cl_state_dict()[1].items() if k != "ewc.0.anchor.fc2.bias"}
    with pytest.raises(ValueError, match=r"without anchor .*ewc\.0\.\*\.fc2\.bias"):
        other.load_cl_state_dict(config, lone)


def test_fisher_of_a_list_pair_equals_the_tuple_and_same_shape_lists_are_batches():
    torch.manual_seed(0)
    model = Net()
    X, y = _data(30)
    want = model.estimate_fisher((X, y), F.cross_entropy, consolidate=False)
    # [X, y] used to be read as two batches (X, then the labels as inputs) and failed in the loss
    got = model.estimate_fisher([X, y], F.cross_entropy, consolidate=False, batch_size=7)
    assert all(torch.allclose(want[n], got[n], atol=1e-6) for n in want)
    got = empirical_fisher(model, [X, y, torch.zeros(30)], F.cross_entropy)  # extra field
    assert all(torch.allclose(want[n], got[n], atol=1e-6) for n in want)
    # tensors of one shape and dtype stay a list of batches (reconstruction here)
    ae = SeqNet(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 4))
    whole = empirical_fisher(ae, X, F.mse_loss)
    parts = empirical_fisher(ae, list(X.split(7)), F.mse_loss)
    assert all(torch.allclose(whole[n], parts[n], atol=1e-6) for n in whole)


def test_ambiguous_or_inconsistent_lists_are_refused():
    model = SeqNet(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 4))
    X, y = _data(30)
    with pytest.raises(ValueError, match="Pass a tuple"):  # a (x, target) pair or two batches?
        model.estimate_fisher([X, X + 1], F.mse_loss)
    with pytest.raises(ValueError, match="share the first dimension"):
        empirical_fisher(model, (X, y[:5]), F.cross_entropy)
    with pytest.raises(ValueError, match="neither batches"):
        empirical_fisher(model, [X, y[:5]], F.cross_entropy)
    assert model.EWC_task_count == 0
    # the tuple and an iterator of the two tensors say which is meant
    pair = model.estimate_fisher((X, X + 1), F.mse_loss, consolidate=False)
    two = model.estimate_fisher(iter([X, X + 1]), F.mse_loss, consolidate=False)
    assert not all(torch.allclose(pair[n], two[n]) for n in pair)


def test_reference_batch_with_inputs_and_targets_of_different_lengths_is_refused():
    model = Net()
    X, y = _data(10)
    with pytest.raises(ValueError, match="share the first dimension"):
        model.calculate_ref_gradients([X, y[:4]], F.cross_entropy)  # failed inside the loss
    model.calculate_ref_gradients([X, y], F.cross_entropy)  # a list is one batch here
    assert model._ref_grad is not None


@pytest.mark.parametrize("loss", [F.cross_entropy, nn.NLLLoss()])
@pytest.mark.parametrize("bad", [3, -1])
def test_estimate_fisher_refuses_labels_outside_the_outputs(loss, bad):
    # was: "Target 3 is out of bounds" from inside the loss (a device-side assert on CUDA)
    model = Net()
    X, y = _data()
    y[7] = bad
    with pytest.raises(ValueError, match=rf"y holds the label {bad} in data_set but the model "
                       r"has 3 outputs: labels must be in 0\.\.2"):  # fmt: skip
        model.estimate_fisher((X, y), loss, batch_size=5)
    assert model.EWC_task_count == 0


def test_estimate_fisher_leaves_integer_targets_of_a_custom_loss_alone():
    def weighted(out, t):  # integer targets that are not classes of the output
        return (out.sum(1) * t.float()).mean()

    X, y = _data()
    fisher = Net().estimate_fisher((X, y * 10), weighted, batch_size=5)
    assert all(bool(torch.isfinite(f).all()) for f in fisher.values())


@pytest.mark.parametrize("bad", [3, -1])
def test_reference_gradients_refuse_labels_outside_the_outputs(bad):
    # was: "Target 3 is out of bounds" from inside the loss (a device-side assert on CUDA),
    # while estimate_fisher refused the same labels by name
    model = Net()
    X, y = _data()
    y[4] = bad
    mem = EpisodicMemory(20, random_state=0)
    mem.add(X, y)
    for compute in (model.calculate_ref_gradients, model.calculate_ref_gradients_layerwise):
        with pytest.raises(ValueError, match=rf"label {bad} in reference_data .* 3 outputs"):
            compute((X, y), F.cross_entropy)
        with pytest.raises(ValueError, match=rf"label {bad} in reference_data"):
            compute(mem, F.cross_entropy)
    assert model._ref_grad is None and not model._ref_grads_layerwise
    model.calculate_ref_gradients((X, y * 10), lambda o, t: (o.sum(1) * t.float()).mean())
    assert model._ref_grad is not None  # integer targets of a custom loss are left alone


def test_numpy_data_sets_and_reference_batches_are_read_as_tensors():
    # a tuple of arrays was iterated as two batches (X, then y: "got ndarray") and a reference
    # batch of arrays failed with "'numpy.ndarray' object has no attribute 'is_floating_point'"
    X, y = _data()
    Xn, yn = X.double().numpy(), y.numpy()
    model = Net()
    expected = model.estimate_fisher((X, y), F.cross_entropy, batch_size=7, consolidate=False)
    for data in ((Xn, yn), [Xn, yn], (Xn[::-1], yn[::-1])):  # reversed: negative strides
        got = model.estimate_fisher(data, F.cross_entropy, batch_size=7, consolidate=False)
        for n in expected:
            torch.testing.assert_close(got[n], expected[n])
    ref = Net()
    ref.load_state_dict(model.state_dict())
    model.calculate_ref_gradients((Xn[:8], yn[:8]), F.cross_entropy)
    ref.calculate_ref_gradients((X[:8], y[:8]), F.cross_entropy)
    torch.testing.assert_close(model._ref_grad, ref._ref_grad)


def test_reference_gradients_of_a_sample_list_or_dataset_equal_the_batch():
    # the original's memory is a list of per-sample (x, y) tuples; it failed with
    # "'tuple' object has no attribute 'shape'", and a Dataset with a TypeError
    torch.manual_seed(0)
    model = Net()
    X, y = _data(12)
    model.calculate_ref_gradients((X, y), F.cross_entropy)
    expected = model._ref_grad.clone()
    pairs = [(X[i], int(y[i])) for i in range(12)]
    for data in (pairs, torch.utils.data.TensorDataset(X, y)):
        model.calculate_ref_gradients(data, F.cross_entropy)
        torch.testing.assert_close(model._ref_grad, expected)
        model.calculate_ref_gradients_layerwise(data, F.cross_entropy)
        torch.testing.assert_close(model._ref_grads_layerwise["fc1.weight"], expected[:24])
    with pytest.raises(ValueError, match="empty"):
        model.calculate_ref_gradients(torch.utils.data.TensorDataset(X[:0], y[:0]), F.cross_entropy)


def test_non_tensor_batch_fields_are_refused_with_a_clear_error():
    # a list of per-sample (x, int) pairs, (X, y.tolist()) or (X.tolist(), y) failed with
    # "'int' object has no attribute 'is_floating_point'" or read X as a batch of its own
    model = Net()
    X, y = _data(10)
    with pytest.raises(TypeError, match="targets of a batch must be a tensor.*one sample"):
        model.estimate_fisher([(X[i], int(y[i])) for i in range(10)], F.cross_entropy)
    with pytest.raises(ValueError, match="first dimension.*one sample"):
        model.estimate_fisher([(X[i], y[i]) for i in range(10)], F.cross_entropy)
    for data in ((X, y.tolist()), (X.tolist(), y)):
        with pytest.raises(TypeError, match="tuple data set must all be tensors"):
            model.estimate_fisher(data, F.cross_entropy)
    with pytest.raises(TypeError, match="inputs of a batch must be a tensor"):
        model.calculate_ref_gradients((X.tolist(), y), F.cross_entropy)
    assert model.EWC_task_count == 0


@pytest.mark.parametrize("bad", [True, float("inf"), float("nan"), 0.0])
def test_layerwise_loss_lambda_refuses_bools_and_non_finite_values(bad):
    # the original's 4th positional argument was store_encoded: (mem, loss, 64, True) was read
    # as loss_lambda=True (1.0) and store_encoded silently ignored; inf gave NaN projections
    model = Net()
    X, y = _data(10)
    with pytest.raises(ValueError, match="loss_lambda must be a finite number > 0"):
        model.calculate_ref_gradients_layerwise((X, y), F.cross_entropy, 8, bad)
    assert model._ref_grads_layerwise == {}
