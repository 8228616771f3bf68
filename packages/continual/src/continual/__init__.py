"""continual: continual learning from streamed data for any PyTorch module.

EWC (separate / online, per-sample empirical Fisher), SI, LwF, A-GEM (global / layer-wise), GEM,
experience replay, DER++ and joint training as plugins of one Trainer; an episodic memory with
pluggable policies; class-/task-incremental, permuted and time-window streams; a threaded stream
buffer; and the accuracy-matrix metrics (average, forgetting, BWT, FWT).
"""

from .__about__ import __version__
from .buffer import StreamBuffer
from .kernels import agem_project, gem_project, per_sample_squared_grads, solve_gem_dual
from .learner import ContinualLearner, EWCTerms, empirical_fisher, iter_batches, split_batch
from .memory import POLICIES, EpisodicMemory, stratified_order
from .metrics import (
    ResultMatrix,
    average_metric,
    backward_transfer,
    forgetting,
    forward_transfer,
)
from .models import MLP, ConvAutoencoder2D, ConvAutoencoder3D, MLPAutoencoder, load_model
from .plots import plot_accuracy_matrix, plot_task_curves
from .scenarios import (
    DeviceDataLoader,
    Experience,
    Scenario,
    SubDataset,
    class_incremental,
    permuted,
    task_incremental,
    time_windows,
    to_device,
)
from .strategies import AGEM, DERPP, EWC, GEM, SI, Joint, LwF, Naive, Replay, Strategy
from .toy import (
    TimeDependentIterDataset,
    TimeDependentTensorDataset,
    drifting_clusters,
    generate_fake_toy,
    generate_toy8,
    label2color_toyN,
    points_on_circle,
    td_arrays,
    td_gen,
    tdds_arrays,
    tdds_gen,
)
from .trainer import Callback, History, Trainer, fit_stream

__all__ = [
    "AGEM",
    "DERPP",
    "EWC",
    "GEM",
    "MLP",
    "POLICIES",
    "SI",
    "Callback",
    "ContinualLearner",
    "ConvAutoencoder2D",
    "ConvAutoencoder3D",
    "DeviceDataLoader",
    "EWCTerms",
    "EpisodicMemory",
    "Experience",
    "History",
    "Joint",
    "LwF",
    "MLPAutoencoder",
    "Naive",
    "Replay",
    "ResultMatrix",
    "Scenario",
    "Strategy",
    "StreamBuffer",
    "SubDataset",
    "TimeDependentIterDataset",
    "TimeDependentTensorDataset",
    "Trainer",
    "__version__",
    "agem_project",
    "average_metric",
    "backward_transfer",
    "class_incremental",
    "drifting_clusters",
    "empirical_fisher",
    "fit_stream",
    "forgetting",
    "forward_transfer",
    "gem_project",
    "generate_fake_toy",
    "generate_toy8",
    "iter_batches",
    "label2color_toyN",
    "load_model",
    "per_sample_squared_grads",
    "permuted",
    "plot_accuracy_matrix",
    "plot_task_curves",
    "points_on_circle",
    "solve_gem_dual",
    "split_batch",
    "stratified_order",
    "task_incremental",
    "td_arrays",
    "td_gen",
    "tdds_arrays",
    "tdds_gen",
    "time_windows",
    "to_device",
]
