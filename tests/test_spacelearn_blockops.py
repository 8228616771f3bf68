"""spacelearn with blockops: retrieve neighbours by one quantity's latent subspace."""

import blockops
import spacelearn as sl
import torch
from spacelearn.data import pool


def test_knn_in_a_quantity_subspace_finds_fields_with_similar_quantity():
    torch.manual_seed(0)
    fields, raw = sl.synthetic.smooth_fields(300, 16, random_state=0)
    Y = {q: pool(v, 4).flatten(1) for q, v in raw.items()}
    Y = {q: (v - v.mean()) / v.std() for q, v in Y.items()}
    Z = fields.flatten(1)  # a fixed "encoder": the raw pixels
    space = sl.solve_subspaces(Z, Y, k=4, method="joint")
    assert sl.max_principal_cosine(space.W) < 1e-4

    omega = space.W["smooth"].T  # (D, k): distances in the smooth-field subspace
    _, idx = blockops.knn(Z[:50], Z[50:], 1, omega=omega, db_block=64)
    near = (Y["smooth"][:50] - Y["smooth"][50 + idx[:, 0]]).pow(2).mean()
    far = (Y["smooth"][:50] - Y["smooth"][torch.randperm(300)[:50]]).pow(2).mean()
    assert near < 0.5 * far


def test_device_resolution_is_shared_with_blockops():
    Z = torch.randn(40, 6)
    space = sl.solve_subspaces(Z, {"a": Z[:, :2]}, k=2, device=blockops.resolve_device("cpu"))
    assert space.W["a"].device.type == "cpu"
