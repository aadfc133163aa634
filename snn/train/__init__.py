"""The training engine: `python -m snn.train` on the command line, `run(Config(...))` from Python.

    from snn.train import Config, run
    results = run(Config.from_preset("paper-cifar10", data_root="~/data", out="runs/r19"))
    print(results.report())          # last-epoch, best-validation and best-test accuracies
    results.model, results.history   # the trained network, one metrics dict per epoch

Modules: config (Config, surrogate modes), presets (the paper's recipes), engine (run, Results,
the epoch loop), prepare (every check and builder before the run folder exists), loop (one
epoch, evaluation, NonFiniteLoss), state (what a checkpoint holds: Training, PartialEpoch),
runfolder (what a run folder holds, taking, checking and resuming it), checkpoint (atomic save,
integrity-checked load, RNG states), metrics (per-epoch CSV / JSON lines), distributed (torchrun
DDP, failing all ranks together), runlock (one process per run folder), stop (SIGINT / SIGTERM at
a step boundary), cli (`python -m snn.train`, its table of exit codes).
"""

from .checkpoint import CheckpointError, WriteError
from .cli import main
from .config import Config, ConfigError, parse_surrogate
from .distributed import PeerFailed
from .engine import Results, run
from .loop import NonFiniteLoss
from .presets import PRESETS
from .runlock import RunFolderBusy
from .stop import Interrupted

__all__ = ["run", "Config", "Results", "PRESETS", "NonFiniteLoss", "ConfigError", "CheckpointError", "WriteError",
           "PeerFailed", "RunFolderBusy", "Interrupted", "parse_surrogate", "main"]
