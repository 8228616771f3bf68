"""A small test double of egm-core's fitted ``PyEGM`` contract (what egm-viz reads).

It grows a bank the simple way (seed + energy-scaled random step, per class and iteration),
records ``history_`` like the real model and has ``trend_paths`` that walk toward each class
mean of the bank. It lets the drawing code be tested on banks of any shape (many classes,
string labels, sessions) independently of the real model, which the main tests use.
"""

from __future__ import annotations

import numpy as np
import torch


class FakeEGM:
    def __init__(self, num_iters=3, num_points=6, path_steps=4, random_state=0):
        self.num_iters = num_iters
        self.num_points = num_points
        self.path_steps = path_steps
        self.random_state = random_state

    # --- growth -----------------------------------------------------------------------------
    def fit(self, X, y):
        X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        codes = torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)
        self.n_features_in_ = X.shape[1]
        self._gen = torch.Generator().manual_seed(self.random_state)
        self.bank_X_ = X.clone()
        self.bank_y_ = codes
        self.bank_is_real_ = torch.ones(len(y), dtype=torch.bool)
        self.bank_generation_ = torch.zeros(len(y), dtype=torch.long)
        self.bank_energy_ = torch.zeros(len(y))
        self.bank_seed_ = torch.full((len(y),), -1, dtype=torch.long)
        self.history_ = []
        self._session = 0
        self._grow(self.num_iters)
        return self

    def continue_fit(self, extra_iters=2):
        self._session += 1
        self._grow(extra_iters)
        return self

    def partial_fit(self, X, y):
        y = np.asarray(y)
        self.classes_ = np.union1d(self.classes_, y)
        # new labels must sort after the old ones so the bank's codes stay valid
        X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        codes = torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)
        n = len(y)
        self.bank_X_ = torch.cat([self.bank_X_, X])
        self.bank_y_ = torch.cat([self.bank_y_, codes])
        self.bank_is_real_ = torch.cat([self.bank_is_real_, torch.ones(n, dtype=torch.bool)])
        self.bank_generation_ = torch.cat([self.bank_generation_, torch.zeros(n, dtype=torch.long)])
        self.bank_energy_ = torch.cat([self.bank_energy_, torch.zeros(n)])
        self.bank_seed_ = torch.cat([self.bank_seed_, torch.full((n,), -1, dtype=torch.long)])
        self._session += 1
        self._grow(2)
        return self

    def _grow(self, iters):
        C = len(self.classes_)
        for _ in range(iters):
            t = int(self.bank_generation_.max()) + 1
            new_X, new_y, new_e, new_s = [], [], [], []
            radius, energy, counts = [], [], []
            for c in range(C):
                members = torch.nonzero(self.bank_y_ == c).flatten()
                spread = self.bank_X_[members].std(dim=0).mean().item() if len(members) > 1 else 1.0
                g = -torch.log(torch.rand(self.num_points, generator=self._gen) + 1e-12)
                e = g / g.sum()
                pick = members[torch.randint(len(members), (self.num_points,), generator=self._gen)]
                step = torch.randn(self.num_points, self.n_features_in_, generator=self._gen)
                step = step / step.norm(dim=1, keepdim=True)
                new_X.append(self.bank_X_[pick] + step * (0.5 + 3 * e[:, None]) * spread)
                new_y.append(torch.full((self.num_points,), c, dtype=torch.long))
                new_e.append(e)
                new_s.append(pick)
                radius.append(spread)
                energy.append(float(e.sum()))
                counts.append(self.num_points)
            self.bank_X_ = torch.cat([self.bank_X_, *new_X])
            self.bank_y_ = torch.cat([self.bank_y_, *new_y])
            self.bank_is_real_ = torch.cat(
                [self.bank_is_real_, torch.zeros(C * self.num_points, dtype=torch.bool)]
            )
            self.bank_generation_ = torch.cat(
                [self.bank_generation_, torch.full((C * self.num_points,), t, dtype=torch.long)]
            )
            self.bank_energy_ = torch.cat([self.bank_energy_, *new_e])
            self.bank_seed_ = torch.cat([self.bank_seed_, *new_s])
            self.history_.append(
                {
                    "session": self._session,
                    "iteration": t,
                    "class_counts": counts,
                    "radius": radius,
                    "energy": energy,
                }
            )

    # --- inference --------------------------------------------------------------------------
    def _means(self):
        C = len(self.classes_)
        return torch.stack([self.bank_X_[self.bank_y_ == c].mean(dim=0) for c in range(C)])

    def trend_paths(self, X, path_steps=None):
        S = self.path_steps if path_steps is None else path_steps
        X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        means = self._means()
        frac = torch.linspace(0, 0.6, S + 1)
        paths = X[:, None, None, :] + frac[None, None, :, None] * (
            means[None, :, None, :] - X[:, None, None, :]
        )
        scores = -torch.cdist(X, means)
        return {"paths": paths, "scores": scores, "winner": scores.argmax(dim=1)}

    def predict(self, X):
        return self.classes_[self.trend_paths(X)["winner"].numpy()]

    def visualize_explosion(self, X=None, y=None, **kwargs):
        import egm_viz

        return egm_viz.visualize_explosion(self, X, y, **kwargs)
