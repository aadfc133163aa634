"""`Config`: every setting of a training run, validated, with the small CPU default on digits.

    cfg = Config()                                           # cifarnet x0.25 on digits, T=2, CPU-sized
    cfg = Config.from_preset("paper-cifar10", data_root="~/data", epochs=300)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

from kernels import BACKENDS

from .. import checks, dspike, exits
from ..data import DATASETS
from ..models import MODELS, NORMS
from .factory import check_spec, is_factory
from .presets import PRESETS

OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
LIF_BACKENDS = BACKENDS
SURROGATE_FORMS = "'esg', 'tanh:K' (K > 0), 'rect' or 'rect:WIDTH' (WIDTH > 0), 'dspike'"
SEED_MAX = 2**32 - 1  # numpy.random.seed accepts [0, 2**32 - 1]
RECT_WIDTH = 1.0  # tdBN's rectangular surrogate: 1/a on |u - vth| < a/2 with a = 1 (Zheng et al. 2021)

# Fields that may change when a run is resumed: where and how it runs, not what it computes.
RUNTIME_FIELDS = ("out", "resume", "progress", "workers", "data_root", "download", "device", "amp",
                  "channels_last", "backend")


class ConfigError(ValueError):
    """Settings that cannot run as given; the command line prints the message and exits."""

    exit_code = exits.USAGE


@dataclass(frozen=True)
class Surrogate:
    """A parsed --surrogate: the snn.LIF surrogate and alpha, and what updates alpha per epoch.

    schedule: 'esg' (snn.ESG sets K each epoch), 'dspike' (snn.dspike.select_temperature picks b
    each epoch) or None (alpha fixed)."""

    lif: str
    alpha: float
    schedule: Optional[str]


def parse_surrogate(spec: str, k_min: float = 1.0, dspike_b0: float = dspike.B0) -> Surrogate:
    """'esg' | 'tanh:K' | 'rect' | 'rect:WIDTH' | 'dspike' -> Surrogate."""
    if not isinstance(spec, str):
        raise TypeError(f"surrogate must be a str, one of {SURROGATE_FORMS}; got {spec!r}")
    name, _, value = spec.partition(":")
    if spec == "esg":
        return Surrogate("tanh", float(k_min), "esg")
    if spec == "dspike":
        return Surrogate("dspike", float(dspike_b0), "dspike")
    if name in ("tanh", "rect") and (value or name == "rect"):
        try:
            alpha = float(value) if value else RECT_WIDTH
        except ValueError:
            alpha = math.nan
        if math.isfinite(alpha) and alpha > 0:
            return Surrogate(name, alpha, None)
    raise ValueError(f"surrogate must be one of {SURROGATE_FORMS}; got {spec!r}")


@dataclass
class Config:
    """One training run. Defaults: a small CPU run on scikit-learn's digits (no download).

    model, width, norm, bias: snn.models.build arguments (bias None: the norm's default, biases
    only on the hidden FCs with tdBN / BN and none with norm 'none'); or model 'MODULE:FACTORY', your
    own network (snn.train.factory; width, norm and bias then unused), with time_major stating its
    input convention (None: the module's `time_major` attribute, else its forward's signature).
    dataset, data_root, download, val_fraction, data_options: snn.data.build_datasets arguments
    (input_size sets the dataset's `size` option).
    T: timesteps (frames for event data). surrogate: see parse_surrogate; k_min/k_max: ESG's
    range; dspike_*: Algorithm 1 of Dspike (snn.dspike). im_lambda: weight of IM-Loss (eq. 12).
    batch_size: global batch (split evenly across DDP ranks). out: run directory (None: runs/<name>).
    amp, channels_last, workers: None chooses (bf16 autocast, channels_last and 8 loader workers
    on CUDA; none of them on CPU).
    """

    model: str = "cifarnet"
    width: float = 0.25
    norm: str = "tdbn"
    bias: Optional[bool] = None
    time_major: Optional[bool] = None
    dataset: str = "digits"
    data_root: Optional[str] = None
    download: bool = False
    input_size: Optional[int] = None
    data_options: dict = field(default_factory=dict)
    val_fraction: float = 0.1
    T: int = 2
    surrogate: str = "esg"
    k_min: float = 1.0
    k_max: float = 10.0
    dspike_b0: float = dspike.B0
    dspike_db: float = dspike.DB
    dspike_eps: float = dspike.EPS
    dspike_chunk: int = 16
    vth: float = 0.5
    decay: float = 0.25
    detach_reset: bool = False
    backend: str = "auto"
    im_lambda: float = 2.0
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    clip_grad: Optional[float] = None
    epochs: int = 4
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"
    amp: Optional[bool] = None
    channels_last: Optional[bool] = None
    workers: Optional[int] = None
    out: Optional[str] = None
    resume: bool = False
    init_from: Optional[str] = None
    progress: bool = True

    def __post_init__(self):
        if is_factory(self.model):
            check_spec(self.model)  # imported only when the run is prepared: an import failure is one ConfigError
        else:
            if self.model not in MODELS:
                raise ValueError(f"model must be one of {tuple(MODELS)} or MODULE:FACTORY (your own network, "
                                 f"e.g. mypkg.nets:make), got {self.model!r}")
        for name, accepted in (("norm", NORMS), ("dataset", DATASETS), ("optimizer", OPTIMIZERS),
                               ("device", DEVICES), ("backend", LIF_BACKENDS)):
            checks.choice(name, getattr(self, name), accepted)
        for name in ("width", "k_min", "k_max", "dspike_b0", "dspike_db", "dspike_eps", "vth", "lr"):
            checks.real(name, getattr(self, name), 0, low_open=True)
        for name in ("im_lambda", "momentum", "weight_decay"):
            checks.real(name, getattr(self, name), 0)
        checks.real("decay", self.decay, 0, 1)
        checks.real("val_fraction", self.val_fraction, 0, 1, high_open=True)
        for name in ("T", "epochs", "batch_size", "dspike_chunk"):
            checks.integer(name, getattr(self, name), 1)
        checks.integer("seed", self.seed, 0)
        if self.seed > SEED_MAX:
            raise ValueError(f"seed must be an int in [0, {SEED_MAX}] (numpy's seed range), got {self.seed}")
        for name in ("download", "detach_reset", "resume", "progress"):
            checks.boolean(name, getattr(self, name))
        if self.clip_grad is not None:
            checks.real("clip_grad", self.clip_grad, 0, low_open=True)
        if self.init_from is not None and not isinstance(self.init_from, str):
            raise TypeError(f"init_from must be the path of a checkpoint as a str, got {type(self.init_from).__name__}")
        if self.input_size is not None:
            checks.integer("input_size", self.input_size, 1)
        if self.workers is not None:
            checks.integer("workers", self.workers, 0)
        for name in ("amp", "channels_last", "bias", "time_major"):
            if getattr(self, name) is not None:
                checks.boolean(name, getattr(self, name))
        if self.k_min > self.k_max:
            raise ValueError(f"k_min must be <= k_max, got k_min={self.k_min}, k_max={self.k_max}")
        if self.dspike_db >= self.dspike_b0:
            raise ValueError(f"dspike_db must be < dspike_b0 so that every candidate temperature is > 0, "
                             f"got dspike_b0={self.dspike_b0}, dspike_db={self.dspike_db}")
        if not isinstance(self.data_options, dict):
            raise TypeError(f"data_options must be a dict of dataset options, got {type(self.data_options).__name__}")
        if self.input_size is not None and "size" in self.data_options:
            raise ValueError(f"give the input size once: input_size={self.input_size} or data_options['size']="
                             f"{self.data_options['size']}, not both")
        parse_surrogate(self.surrogate)

    @property
    def surrogate_spec(self) -> Surrogate:
        return parse_surrogate(self.surrogate, self.k_min, self.dspike_b0)

    def dataset_options(self) -> dict:
        """The **opts for build_datasets: data_options plus size=input_size when given."""
        return {**self.data_options, **({} if self.input_size is None else {"size": self.input_size})}

    def run_name(self) -> str:
        """Default run directory name: model-dataset-surrogate-T-seed."""
        model = self.model.replace(":", ".")  # a factory's MODULE:FACTORY; ':' is awkward in paths
        return f"{model}-{self.dataset}-{self.surrogate.replace(':', '')}-T{self.T}-seed{self.seed}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The fields that define what the run computes (all but RUNTIME_FIELDS)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "Config":
        """Config() with preset `name` (see snn.train.presets) and then `overrides` applied."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
        return cls(**{**PRESETS[name], **overrides})
