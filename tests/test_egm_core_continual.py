"""egm-core inside continual's class-incremental protocol: PyEGM against continual's Naive MLP.

The scenario, the result matrix and its summaries are continual's; the learner is PyEGM, fed
the scenario's torch tensors as they come. The few-shot class-incremental story of egm-core is
that new classes are added without forgetting the old ones, so on the same stream PyEGM must
keep its earlier experiences where plain fine-tuning forgets them.
"""

import numpy as np
import pytest
import torch

continual = pytest.importorskip("continual")
egm_core = pytest.importorskip("egm_core")
sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def digits_scenario():
    X, y = sklearn_datasets.load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    test = np.zeros(len(y), dtype=bool)
    for c in range(10):
        rows = np.flatnonzero(y == c)
        test[rng.choice(rows, size=len(rows) * 3 // 10, replace=False)] = True
    mean, std = X[~test].mean(0), X[~test].std(0) + 1e-6
    X = ((X - mean) / std).astype(np.float32)
    return continual.class_incremental(X[~test], y[~test], X[test], y[test], 5)


def _egm_result_matrix(scenario) -> "continual.ResultMatrix":
    R = continual.ResultMatrix(len(scenario.train_stream))
    model = egm_core.PyEGM(random_state=0)
    for i, experience in enumerate(scenario.train_stream):
        X, y = experience.tensors()
        (model.fit if i == 0 else model.partial_fit)(X, y)
        R.set_row(i, [model.score(*e.tensors()) for e in scenario.test_stream])
    return R


def test_pyegm_keeps_old_classes_where_fine_tuning_forgets(digits_scenario):
    egm = _egm_result_matrix(digits_scenario)
    torch.manual_seed(0)
    naive = continual.Trainer(
        continual.MLP(64, (64,), 10), continual.Naive(), epochs=2, lr=0.05, device="cpu"
    ).fit_stream(digits_scenario)

    egm_summary, naive_summary = egm.summary(), naive.summary()
    assert egm_summary["forgetting"] < 0.05 < 0.3 < naive_summary["forgetting"]
    assert egm_summary["average"] > 0.9 > naive_summary["average"] + 0.2
    # every experience, not only the last, is still recognised after the whole stream
    assert min(egm.state_dict()["R"][-1]) > 0.85
