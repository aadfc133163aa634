"""Spiking neural networks with IM-Loss (NeurIPS 2022): LIF layers, IM-Loss, the ESG schedule,
tdBN, Dspike's temperature selection, the paper's architectures and a spike-rate monitor.

    import snn
    model = snn.models.build("resnet19", num_classes=10)
    esg = snn.ESG(model, epochs=N)
    logits = model(images, T=4)
    loss = F.cross_entropy(logits, labels) + 2.0 * snn.im_loss(model)   # eq. 12
    trained = snn.load("runs/digits/best.pt", backend="torch")          # a run's model, for inference
"""

from . import dspike, models
from .esg import ESG, esg_alpha, esg_k
from .im_loss import im_loss
from .layers import TimeDistributed, as_sequence
from .monitor import SpikeRateMonitor
from .neuron import LIF, lif_layers
from .tdbn import TDBatchNorm2d



def load(path, *, backend: str = "auto", device="cpu"):
    """The trained model of a run's best.pt / last.pt, in eval mode: see snn.train.inference.load
    (forward(x [B, C, H, W], T) -> logits [B, K]; CheckpointError / CannotRebuild saying why not)."""
    from .train.inference import load as load_checkpoint  # here: snn.train imports pandas, tqdm, the data

    return load_checkpoint(path, backend=backend, device=device)


__all__ = ["load", "LIF", "lif_layers", "im_loss", "ESG", "esg_k", "esg_alpha", "TDBatchNorm2d", "TimeDistributed",
           "as_sequence", "SpikeRateMonitor", "dspike", "models"]
