"""DistributedDataParallel plumbing for `torchrun --nproc_per_node=N -m snn.train ...`.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `setup` then joins the process group (nccl on
CUDA, gloo on CPU) with a timeout of $SNN_DIST_TIMEOUT seconds (default 600), so that a rank
whose peers never come (a taken MASTER_PORT, a rank not started) stops with a message. Without them
the run is a single process and every helper here is a no-op.
Rank 0 logs and writes checkpoints; metrics are summed over ranks.

Failures end every rank together: a step that may fail on some ranks only (rank 0's file writes,
loading data and checkpoints) runs inside `together`, which shares the outcome so that every rank
raises (the failing rank its own exception, the others PeerFailed); any other exception makes
`run` leave the process group at once (`abort`), without the teardown barrier, so that a peer
blocked in a collective fails promptly (gloo: "Connection closed by peer") instead of waiting.

The failing rank says why before the others can know that it failed: `together` hands its error
to the context's `report` before sharing the outcome, and `run` reports any other error before
leaving the group. So with a report that writes a line (the command line's), the line of the rank
that failed comes before the lines of the ranks it stops.
"""

from __future__ import annotations

import datetime
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.distributed as dist
from torch import nn

from .. import exits
from ..im_loss import im_loss as local_im_loss, im_term, restricted_layers
from .config import ConfigError


TIMEOUT_VARIABLE = "SNN_DIST_TIMEOUT"
WATCHDOG_GRACE = 10.0  # seconds after the timeout before the start-up watchdog ends the process
DEFAULT_TIMEOUT = 600.0  # seconds: rank 0 may build the data (a download) while the others wait in a collective


class StartFailed(ConfigError):
    """This process could not join the process group (the port is taken, a peer never came, ...)."""


class PeerFailed(RuntimeError):
    """Another process of the run failed in a shared step (see together); this one stops too. The
    message names the failing ranks and their errors."""

    exit_code = exits.FAILED


Report = Callable[[BaseException], object]  # says why this process stops (snn.train.cli.Report)


@dataclass(frozen=True)
class Context:
    """rank / world of this process, its device, whether setup() created the process group, and the
    report that `together` hands this rank's failure to before the other ranks learn of it."""

    rank: int
    world: int
    device: torch.device
    owns_group: bool
    report: Optional[Report] = field(default=None, compare=False)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup(device: str, report: Optional[Report] = None) -> Context:
    """Join the torchrun process group if WORLD_SIZE > 1 and pick this rank's device.

    device: 'auto' (CUDA when available), 'cpu' or 'cuda' (cuda:LOCAL_RANK under torchrun).
    report: kept in the Context for `together`. Raises ConfigError for device='cuda' on a machine
    without CUDA, StartFailed when the process group cannot be joined.
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but this machine has no usable CUDA device "
                          "(torch.cuda.is_available() is False); use --device cpu or auto")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world == 1:
        return Context(0, 1, dev, owns_group=False, report=report)
    owns = not dist.is_initialized()
    if owns:
        seconds = timeout_seconds()
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        rank = os.environ.get("RANK", "?")
        advice = ("check that every rank was started with the same MASTER_ADDR / MASTER_PORT and that no other "
                  "program uses that port")
        # torch's store client can wait for ever on a port where another program accepts connections
        # and never answers: give up a little after the timeout, saying why.
        watchdog = threading.Timer(seconds + WATCHDOG_GRACE, _give_up, args=(
            f"error (rank {rank}): rank {rank} could not join the process group at {where} within {seconds:g} s "
            f"({TIMEOUT_VARIABLE}): no answer; {advice}",))
        watchdog.daemon = True
        watchdog.start()
        try:
            dist.init_process_group("nccl" if use_cuda else "gloo", device_id=dev if use_cuda else None,
                                    timeout=datetime.timedelta(seconds=seconds))
        except (RuntimeError, ValueError, OSError) as e:  # DistNetworkError, DistStoreError, a bad variable
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StartFailed(f"rank {rank} could not join the process group at {where} within {seconds:g} s "
                              f"({TIMEOUT_VARIABLE}): {type(e).__name__}: {reason}; {advice}") from None
        finally:
            watchdog.cancel()
    return Context(dist.get_rank(), dist.get_world_size(), dev, owns_group=owns, report=report)


def _give_up(line: str) -> None:
    """The start-up watchdog's end: one line on stderr, then exit with StartFailed's code at once (the
    main thread is stuck inside torch's store client, where no exception reaches it)."""
    print(line, file=sys.stderr, flush=True)
    os._exit(StartFailed.exit_code)


def timeout_seconds() -> float:
    """The process group's timeout (joining it, and any one collective): $SNN_DIST_TIMEOUT seconds,
    default DEFAULT_TIMEOUT. Raises ConfigError for a value that is not a positive number."""
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise ConfigError(f"{TIMEOUT_VARIABLE} must be a positive number of seconds, got {text!r}")
    return value


def teardown(ctx: Context) -> None:
    """Leave the process group after a successful run (every rank reaches this barrier)."""
    if ctx.owns_group and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def abort(ctx: Context) -> None:
    """Leave the process group after a failure, without waiting for the other ranks: their pending
    and next collectives then fail instead of blocking (gloo closes its connections)."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def lost_peer(error: BaseException) -> bool:
    """Whether error is a collective that failed because another rank left the process group (gloo
    reports "Connection closed by peer" or "Connection reset by peer")."""
    return isinstance(error, RuntimeError) and any(m in str(error) for m in ("closed by peer", "reset by peer"))


def together(fn, ctx: Context, main_only: bool = False):
    """fn() on every rank (on rank 0 alone with main_only), then agree on the outcome: if it raised
    anywhere, every rank raises, the failing ranks their own exception, the others PeerFailed.

    -> fn's result (None on the ranks that did not run it). Call it on every rank at the same point.
    A failing rank hands its error to ctx.report first: the others wait in the gather until it has."""
    result, error = None, None
    if ctx.main or not main_only:
        try:
            result = fn()
        except Exception as e:
            if not ctx.distributed:
                raise
            error = e
            if ctx.report is not None:
                ctx.report(e)
    failures = [f for f in gather_objects(None if error is None else f"rank {ctx.rank}: {error}", ctx) if f]
    if error is not None:
        raise error
    if failures:
        raise PeerFailed(f"another process of the run failed ({'; '.join(failures)})")
    return result


def wrap(model: nn.Module, ctx: Context) -> nn.Module:
    """model inside DistributedDataParallel when distributed (rank 0's weights broadcast), else model."""
    if not ctx.distributed:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)


def all_sum(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    """values (any shape) summed over ranks; returned as is on a single process."""
    if ctx.distributed:
        values = values.clone()
        dist.all_reduce(values)
    return values


def all_max(value: float, ctx: Context) -> float:
    if not ctx.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def broadcast_object(obj, ctx: Context):
    """Rank 0's picklable obj on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, 0, device=ctx.device)
    return box[0]


def gather_objects(obj, ctx: Context) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def im_loss(model: nn.Module, ctx: Context) -> torch.Tensor:
    """snn.im_loss of the global batch: each layer's mean membrane is averaged over ranks first.

    Ranks hold equal local batches (DistributedSampler pads), so the mean of their means g_l is
    the mean over the global batch. The value is sum_l (g_l - vth_l)^2 / L on every rank; its
    gradient on rank r is that of sum_l 2 (g_l - vth_l) m_lr / L (g_l held constant), whose average
    over ranks, as DDP takes it, is the single-process gradient with the global batch. On one
    process this is snn.im_loss(model).
    """
    if not ctx.distributed:
        return local_im_loss(model)
    layers = restricted_layers(model)  # raises when IM-Loss would be undefined, stale or without gradient
    local = torch.stack([m.u_mean for m in layers])  # [L] this rank's layer means m_lr
    global_means = all_sum(local.detach(), ctx) / ctx.world  # [L] g_l
    # value g_l, gradient that of m_lr: eq. 11's gradient with g_l held constant, as derived above
    return im_term(local + (global_means - local.detach()), [m.vth for m in layers])
