"""0.1.0 printed from subspaces, optimal_bins, minimal_latent_dim and solve_dims: never again."""

import logging

import spacelearn as sl
import torch


def test_nothing_is_printed(capsys, caplog):
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(64, 12, generator=g)
    raw = {"a": torch.randn(64, 1, 8, 8, generator=g), "b": torch.randn(64, 1, 8, 8, generator=g)}
    pooled = {q: sl.data.pool(v, 4) for q, v in raw.items()}
    with caplog.at_level(logging.INFO, logger="spacelearn"):
        sl.subspaces(Z, pooled, 3)
        assert [r.getMessage() for r in caplog.records] == ["Estimating subspaces..."]
        sl.principal_directions(Z, pooled)
        space = sl.solve_subspaces(Z, pooled, k=3, method="joint")
        sl.solve_dims(raw, 8, 0.9, 0.9)
        sl.optim.optimal_bins(raw)
        sl.optim.k_per_q(pooled)
        sl.optim.minimal_latent_dim({"a": 3, "b": 3})
        sl.combined_loss(Z, space.W, space.A, pooled, space.W, n_dir=4)
    assert capsys.readouterr().out == ""
    assert any("D_min" in r.getMessage() for r in caplog.records)  # logged instead
    assert any("n_bins" in r.getMessage() for r in caplog.records)
    assert sum(r.getMessage() == "Estimating subspaces..." for r in caplog.records) == 2
