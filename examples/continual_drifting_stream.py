"""A drifting stream read in a background thread, learned with the original InSituML API.

A producer thread (``StreamBuffer``) delivers one time step of the drifting octagon clusters at a
time, as a simulation would; the model (a ``ContinualLearner``) trains on each step with A-GEM
against an episodic memory, then consolidates online EWC with the per-sample Fisher. At the end it is
tested on every step it has seen.

python examples/continual_drifting_stream.py           # 10 steps
python examples/continual_drifting_stream.py --smoke   # 4 steps, seconds
"""

from __future__ import annotations

import argparse

import blockops
import continual as cl
import torch
import torch.nn.functional as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="4 steps, seconds")
    parser.add_argument("--platform", default="auto", help="auto | cpu | cuda | cuda:N")
    args = parser.parse_args()
    n_steps = 4 if args.smoke else 10
    device = blockops.resolve_device(args.platform)
    epochs, npoints = (2, 160) if args.smoke else (5, 400)

    scenario = cl.drifting_clusters(n_steps, npoints, dt=0.5, random_state=0)
    torch.manual_seed(0)
    model = cl.MLP(2, (64, 64), 8, onlineEWC=True, gamma=0.8, ewc_lambda=5.0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    memory = cl.EpisodicMemory(200, gradient_ref_data_size=64, random_state=0)

    def produce():  # stands in for a simulation writing one step at a time
        yield from scenario.train_stream

    with cl.StreamBuffer(produce, buffer_size=2, timeout=60) as stream:
        for step, exp in enumerate(stream):
            x_all, y_all = exp.dataset.tensors
            for _ in range(epochs):
                for idx in torch.randperm(len(x_all)).split(32):
                    x, y = x_all[idx].to(device), y_all[idx].to(device)
                    if step > 0:
                        ref = memory.get_data_for_reference_gradient(step, device=device)
                        model.calculate_ref_gradients(ref, F.cross_entropy)
                    opt.zero_grad()
                    loss = F.cross_entropy(model(x), y) + model.ewc_lambda * model.ewc_loss()
                    loss.backward()
                    if step > 0:
                        model.overwrite_grad()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)  # after backward
                    opt.step()
            model.estimate_fisher(exp.dataset, F.cross_entropy)
            memory.add_data_for_task(step, x_all, y_all)
            with torch.no_grad():
                accs = []
                for test in scenario.test_stream[: step + 1]:
                    xt, yt = (t.to(device) for t in test.dataset.tensors)
                    accs.append((model(xt).argmax(1) == yt).float().mean().item())
            print(
                f"step {step}: loss {loss.item():.3f}, Fisher estimates {model.EWC_task_count}, "
                f"memory {len(memory)}, accuracy on steps 0..{step}: "
                + " ".join(f"{a:.2f}" for a in accs)
            )


if __name__ == "__main__":
    main()
