"""`run(config) -> Results`: a whole training run, resumable, on one process or under torchrun.

    from snn.train import Config, run
    results = run(Config(epochs=2, input_size=16, out="runs/digits"))
    results.final_test_acc, results.best_val_epoch, results.best_test_acc, results.model

Before the run folder is created, every setting is checked (snn.train.prepare, with one forward
of a test sample). Then every epoch (`_epoch`): train (Dspike selection first when asked), step
the cosine LR and ESG, evaluate the validation and test splits, append a metrics row, then write
<out>/best.pt (when validation accuracy improved) and <out>/last.pt atomically, and rewrite the
metrics files (spike_rates.csv included; the spike-rate plot is drawn at the end, snn.train.spikes).
Failures are the exceptions listed in run(); under torchrun they end every rank together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..data import make_loader
from ..dspike import DspikeSchedule
from ..esg import ESG
from . import checkpoint, distributed, metrics, runfolder, spikes
from .config import Config
from .distributed import Context
from .loop import EpochPlan, NonFiniteLoss, Stopped, evaluate, train_epoch
from .prepare import Setup, prepare
from .runfolder import Resumed, log as _log
from .state import PartialEpoch, best_record
from .stop import Interrupted, Signals, name as signal_name


@dataclass
class Results:
    """What a run produced. Accuracies are fractions in [0, 1]; epochs are 1-based.

    final_test_acc: test accuracy after the last epoch. best_val_acc / best_val_epoch: the epoch
    chosen on the held-out validation split (its weights are <out>/best.pt) and test_acc_at_best_val,
    the test accuracy of that epoch (None without a validation split). best_test_acc /
    best_test_epoch: the best test accuracy over epochs, the figure the authors' code reports
    (selected on the test set, hence optimistic). model: the trained network (bare, last epoch).
    """

    out: Path
    epochs: int
    final_test_acc: float
    best_val_acc: Optional[float]
    best_val_epoch: Optional[int]
    test_acc_at_best_val: Optional[float]
    best_test_acc: float
    best_test_epoch: int
    history: list[dict] = field(repr=False)
    model: nn.Module = field(repr=False)

    @classmethod
    def from_history(cls, out: Path, history: list[dict], model: nn.Module) -> "Results":
        best_val_acc, best_val_epoch = metrics.best(history, "val_acc")
        best_test_acc, best_test_epoch = metrics.best(history, "test_acc")
        return cls(out=out, epochs=len(history), final_test_acc=history[-1]["test_acc"], best_val_acc=best_val_acc,
                   best_val_epoch=best_val_epoch,
                   test_acc_at_best_val=None if best_val_epoch is None else history[best_val_epoch - 1]["test_acc"],
                   best_test_acc=best_test_acc, best_test_epoch=best_test_epoch, history=history, model=model)

    def to_dict(self) -> dict:
        """JSON-ready summary (without the model and the history)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()
                if k not in ("model", "history")}

    def report(self) -> str:
        lines = [f"test accuracy at the last epoch ({self.epochs}): {100 * self.final_test_acc:.2f}%"]
        if self.best_val_epoch is not None:
            lines.append(f"best validation accuracy {100 * self.best_val_acc:.2f}% at epoch {self.best_val_epoch} "
                         f"(test accuracy there {100 * self.test_acc_at_best_val:.2f}%), weights in "
                         f"{self.out / 'best.pt'}")
        lines.append(f"best test accuracy over epochs (the authors' protocol; selected on the test set, so "
                     f"optimistic): {100 * self.best_test_acc:.2f}% at epoch {self.best_test_epoch}")
        return "\n".join(lines)


def run(config: Config, *, report: Optional[distributed.Report] = None) -> Results:
    """Train config.model on config.dataset as configured; see the module docstring and Config.

    Under torchrun (WORLD_SIZE > 1) every rank calls run; the process group is joined here when
    the caller has not, and left at the end. Every setting is checked before the run folder is
    created. Raises ConfigError for settings that cannot run (also found by one forward of a test
    sample), DatasetNotFound for missing data, runfolder.RunExists (a FileExistsError) when
    <out>/last.pt exists but config.resume is False, checkpoint.CheckpointError for an unusable last.pt to resume,
    loop.NonFiniteLoss when the loss, a gradient or a weight stops being finite (the last
    checkpoint, whose weights are finite, stays), checkpoint.WriteError when a run file cannot be
    written, distributed.PeerFailed on the other ranks when one rank fails in a shared step,
    runlock.RunFolderBusy (a ConfigError) when another process holds the run folder, and
    stop.Interrupted on SIGINT / SIGTERM / SIGHUP (after writing a checkpoint that --resume continues, when
    the signal came while training). An exception on one rank ends every rank (see distributed).

    report(error), when given, is called with the exception that ends this process before it is
    raised, and before this rank leaves the process group (see distributed): the command line
    prints its line there. A signal while joining the process group, where Python cannot raise,
    is reported from a watcher thread, and the process then exits at once with 128 + N.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a snn.train.Config, got {type(config).__name__}")
    with Signals() as signals:
        with signals.at_once("while joining the process group; nothing was written", report):
            ctx = distributed.setup(config.device, report)
        try:
            results = _run(config, ctx, signals)
            signals.immediate = "while the other processes finished; every file of the run is written"
            distributed.barrier(ctx)
        except BaseException as e:
            _leave(e, ctx, report)
    distributed.teardown(ctx)
    return results


def _leave(error: BaseException, ctx: Context, report: Optional[distributed.Report]) -> NoReturn:
    """Report error (a collective broken by a peer that left becomes PeerFailed), then leave the
    process group and raise it: the peers this rank stops see it leave only after its report."""
    failure = error
    if ctx.distributed and distributed.lost_peer(error):
        failure = distributed.PeerFailed(f"another process of the run stopped, so rank {ctx.rank} stopped too; the "
                                         f"failing process's log says why")
    if report is not None:
        report(failure)
    distributed.abort(ctx)
    if failure is error:
        raise error
    raise failure from None


def _run(cfg: Config, ctx: Context, signals: Signals) -> Results:
    with contextlib.ExitStack() as held:  # the run folder's lock, on rank 0, from take_folder to the end
        return _train(cfg, ctx, signals, held)


def _train(cfg: Config, ctx: Context, signals: Signals, held: contextlib.ExitStack) -> Results:
    signals.immediate = "before training began; no checkpoint was written"
    setup = prepare(cfg, ctx, signals, held)
    with signals.writing():  # resume may rebuild best.pt
        resumed = distributed.together(lambda: runfolder.resume(setup.training, cfg, ctx, setup.last_path), ctx) \
            if cfg.resume else Resumed()
    history, best, partial = resumed.history, resumed.best, resumed.partial
    with signals.writing():
        distributed.together(lambda: runfolder.open_out(setup.out, cfg, history), ctx, main_only=True)
    net = distributed.wrap(setup.training.model, ctx)  # after the resume: DDP starts from rank 0's weights
    _log(ctx, setup.description)

    signals.immediate = None  # from here a signal stops the run at the next step boundary
    for epoch in range(len(history), cfg.epochs):
        best = _epoch(setup, net, history, best, partial)
        partial = None
        signum = int(distributed.all_max(float(signals.signum or 0), ctx))
        if signum and epoch + 1 < cfg.epochs:
            raise Interrupted(signum, f"stopped on {signal_name(signum)} after epoch {epoch + 1}/{cfg.epochs}; "
                                      f"{setup.last_path} holds it: continue with --resume")
        if signum:  # came during the last epoch's evaluation or writes: stop as documented, not with 0
            raise Interrupted(signum, f"stopped on {signal_name(signum)} after the last epoch; {setup.last_path} "
                                      f"holds every epoch: --resume writes the results")
    signals.immediate = f"after the last epoch; {setup.last_path} holds every epoch: --resume writes the results"
    return _finish(setup, history)


def _epoch(setup: Setup, net: nn.Module, history: list[dict], best: Optional[dict],
           partial: Optional[PartialEpoch]) -> Optional[dict]:
    """Epoch len(history) + 1: train (the rest of it after `partial`), step the LR and ESG,
    evaluate, append its metrics row to history, write last.pt, best.pt (when validation accuracy
    improved) and the metrics files. best: the best.pt record (state.best_record) so far -> the
    record after this epoch. Raises Interrupted (after writing last.pt) when a signal stopped
    training mid-epoch, NonFiniteLoss when the weights stopped being finite."""
    cfg, ctx, training, epoch = setup.cfg, setup.ctx, setup.training, len(history)
    loader, generator_at_start = _train_loader(setup, epoch, partial)
    row = {"epoch": epoch + 1, "lr": training.optimizer.param_groups[0]["lr"], "K": _surrogate_k(cfg, training.esg)}
    metrics.reset_peak_memory(ctx.device)
    plan = EpochPlan(epoch, cfg.epochs, select=None if training.selector is None else
                     _dspike_on_rank0(training.selector, ctx), progress=cfg.progress and ctx.main,
                     stop=lambda: setup.signals.signum or 0, resume_from=partial)
    trained = train_epoch(net, training.model, loader, training.optimizer, setup.settings, ctx, plan)
    if isinstance(trained, Stopped):
        _stop_mid_epoch(setup, trained, history, best, generator_at_start)
    if not _finite_state(training.model, ctx):  # e.g. weights overflowed by a huge step: never checkpoint them
        raise NonFiniteLoss("non-finite weights or normalization statistics", epoch + 1, cfg.epochs)
    training.scheduler.step()
    if training.esg is not None:
        training.esg.step()
    row.update(_evaluated_row(setup, trained))

    previous_best, _ = metrics.best(history, "val_acc")
    history.append(row)
    improved = row["val_acc"] is not None and (previous_best is None or row["val_acc"] > previous_best)
    if improved and ctx.main:  # rank 0 writes the files, and the record
        best = best_record(len(history), training.model)
    state = training.state(cfg, history, _rng_of_every_rank(ctx), best)
    with setup.signals.writing():
        distributed.together(lambda: _write_epoch(setup, state, history, improved), ctx, main_only=True)
    _log(ctx, metrics.summary(row, cfg.epochs))
    return best


def _train_loader(setup: Setup, epoch: int, partial: Optional[PartialEpoch]) -> tuple[DataLoader, torch.Tensor]:
    """The training loader of epoch (0-based; without the batches partial already trained), with
    fresh workers seeded from the run's generator, and that generator's state before the loader
    drew from it (a stopped epoch stores it, so that --resume replays the same order). Each
    sample's augmentation depends on (seed, epoch, sample) alone, so the batches left after a
    stop are augmented as in an uninterrupted epoch, whichever worker loads them."""
    setup.sampler.set_epoch(epoch)
    setup.train_set.seed_augmentation(setup.cfg.seed, epoch)
    generator_at_start = setup.training.generator.get_state()
    order = setup.sampler if partial is None else _SkipBatches(setup.sampler, partial.step * setup.local_batch)
    loader = make_loader(setup.train_set, setup.local_batch, train=True, workers=setup.workers, sampler=order,
                         generator=setup.training.generator, pin_memory=setup.ctx.device.type == "cuda")
    return loader, generator_at_start


def _evaluated_row(setup: Setup, trained: dict) -> dict:
    """The epoch's metrics after lr and K: train_epoch's (trained), the validation and test
    accuracies (evaluated now), seconds, images/s, peak memory (MiB, largest rank), Dspike's b and
    selection cost (None without Dspike) and each LIF layer's test spike rate ("rate/<layer>")."""
    training, ctx = setup.training, setup.ctx
    start = time.perf_counter()
    val_acc = None if setup.val_loader is None else evaluate(training.model, setup.val_loader, setup.settings, ctx)[0]
    test_acc, rates = evaluate(training.model, setup.test_loader, setup.settings, ctx, rates=True)
    images = trained.pop("images")
    row = dict(trained, val_acc=val_acc, test_acc=test_acc, eval_seconds=time.perf_counter() - start,
               images_per_s=images / trained["epoch_seconds"],
               peak_mem_mib=distributed.all_max(metrics.peak_memory_mib(ctx.device), ctx),
               dspike_b=None, dspike_seconds=None, dspike_forwards=None, dspike_skipped=None)
    if training.selector is not None:
        row.update(dspike_b=training.selector.b, **training.selector.cost)
    row.update({f"rate/{name}": rate for name, rate in rates.items()})
    return row


def _rng_of_every_rank(ctx: Context) -> list[dict]:
    return distributed.gather_objects(checkpoint.capture_rng(), ctx)


def _write_epoch(setup: Setup, state: dict, history: list[dict], improved: bool) -> None:
    checkpoint.save(setup.last_path, state)
    if improved:  # after last.pt, which records it: a kill in between is repaired on resume
        checkpoint.save(setup.best_path, state)
    metrics.write(setup.out, history)


def _stop_mid_epoch(setup: Setup, stopped: Stopped, history: list[dict], best: Optional[dict],
                    generator_at_start: torch.Tensor) -> NoReturn:
    """Write last.pt with the stopped epoch's progress (with the Dspike selection it made, and the
    loader generator as the epoch began, so that --resume replays the same epoch from the next
    step), then raise Interrupted."""
    cfg, training = setup.cfg, setup.training
    dspike_cost = None if training.selector is None else training.selector.cost
    partial = dataclasses.replace(stopped.progress, dspike=dspike_cost)
    state = training.state(cfg, history, _rng_of_every_rank(setup.ctx), best, partial, generator_at_start)
    with setup.signals.writing():
        distributed.together(lambda: checkpoint.save(setup.last_path, state), setup.ctx, main_only=True)
    raise Interrupted(stopped.signum, f"stopped on {signal_name(stopped.signum)} at step {partial.step}/"
                                      f"{partial.steps} of epoch {len(history) + 1}/{cfg.epochs}; saved "
                                      f"{setup.last_path}: continue with --resume")


def _finish(setup: Setup, history: list[dict]) -> Results:
    """Write results.json and the metrics files (also after a resume with nothing left to train)."""
    results = Results.from_history(setup.out, history, setup.training.model)

    def write_results():
        metrics.write(setup.out, history)
        text = json.dumps(results.to_dict(), indent=2) + "\n"
        checkpoint.write_atomic(setup.out / "results.json", lambda f: f.write(text.encode()))
        spikes.write_plot(setup.out, history)

    with setup.signals.writing():
        distributed.together(write_results, setup.ctx, main_only=True)
    _log(setup.ctx, results.report())
    return results


class _SkipBatches(Sampler):
    """sampler without its first `skip` indices: the rest of an interrupted epoch."""

    def __init__(self, sampler: Sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def _dspike_on_rank0(schedule: DspikeSchedule, ctx: Context):
    """train_epoch's `select`: the schedule's choice made on rank 0 (outside autocast, so the loss
    is in fp32) and broadcast, so that every rank adopts the same b and records the same cost."""

    def select(x: torch.Tensor, y: torch.Tensor) -> None:
        outcome = distributed.broadcast_object(schedule.choose(x, y) if ctx.main else None, ctx)
        if outcome["dspike_skipped"] is not None:
            _log(ctx, f"Dspike selection kept b = {schedule.b:g}: {outcome['dspike_skipped']}")
        schedule.adopt(outcome)

    return select


def _surrogate_k(cfg: Config, esg: Optional[ESG]) -> Optional[float]:
    """The tanh surrogate's K for the coming epoch (ESG's or the fixed tanh:K), None for rect / dspike."""
    if esg is not None:
        return esg.k
    surrogate = cfg.surrogate_spec
    return surrogate.alpha if surrogate.lif == "tanh" else None


def _finite_state(model: nn.Module, ctx: Context) -> bool:
    """Whether every parameter and floating-point buffer of model is finite on every rank."""
    bad = any(not torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())
    return distributed.all_max(float(bad), ctx) == 0
