"""--init-from: a new run that starts from another run's weights (fine-tuning, or training a
finished run further), and the errors of a checkpoint that does not fit."""

import pytest
import torch

from snn.train import Config, ConfigError, checkpoint, main, prepare, run

from .test_train_failures import one_line_error


def tiny(out, **overrides) -> Config:
    fields = dict(dataset="synthetic", model="cifarnet", width=0.125, T=2, epochs=1, batch_size=32,
                  progress=False, out=str(out))
    return Config(**{**fields, **overrides})


@pytest.fixture
def initial_weights(monkeypatch):
    """The weights each run's model has when it is first run (the preflight forward), in order."""
    seen, real = [], prepare.preflight

    def spy(model, *args, **kwargs):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real(model, *args, **kwargs)

    monkeypatch.setattr(prepare, "preflight", spy)
    return seen


def test_a_new_run_starts_from_the_checkpoint_weights(tmp_path, initial_weights):
    first = run(tiny(tmp_path / "first", seed=1))
    saved = checkpoint.load(tmp_path / "first" / "last.pt")["model"]  # read back independently of the engine
    run(tiny(tmp_path / "scratch", seed=2))
    further = run(tiny(tmp_path / "further", seed=2, epochs=2, init_from=str(tmp_path / "first" / "last.pt")))
    scratch_init, further_init = initial_weights[1], initial_weights[2]
    assert set(further_init) == set(saved)
    for name, value in saved.items():
        assert torch.equal(further_init[name], value), name
    assert any(not torch.equal(scratch_init[k], saved[k]) for k in saved)  # seed 2 alone starts elsewhere
    assert further.epochs == 2 and len(further.history) == 2  # its own schedule and epochs, from epoch 1
    assert further.history[0]["lr"] == 0.1 and first.history[0]["lr"] == 0.1
    init_from = checkpoint.load(tmp_path / "further" / "last.pt")["config"]["init_from"]
    assert init_from == str(tmp_path / "first" / "last.pt")


def test_a_checkpoint_of_another_network_is_refused_before_the_run_folder(tmp_path):
    run(tiny(tmp_path / "narrow"))
    with pytest.raises(ConfigError, match=r"do not fit this model \(other shapes .*--width"):
        run(tiny(tmp_path / "wide", width=0.25, init_from=str(tmp_path / "narrow" / "last.pt")))
    with pytest.raises(ConfigError, match=r"do not fit this model \(missing: .*unexpected: "):
        run(tiny(tmp_path / "resnet", model="resnet19", init_from=str(tmp_path / "narrow" / "last.pt")))
    assert not (tmp_path / "wide").exists() and not (tmp_path / "resnet").exists()


def test_missing_or_damaged_checkpoints_exit_2(tmp_path, capsys):
    args = ["--dataset", "synthetic", "--width", "0.125", "--T", "2", "--epochs", "1", "--batch-size", "32",
            "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a"), "--init-from", str(tmp_path / "nothing.pt")]) == 2
    assert "--init-from" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes((tmp_path / "b" / "last.pt").read_bytes()[:-100])
    assert main([*args, "--out", str(tmp_path / "c"), "--init-from", str(damaged)]) == 2
    assert str(damaged) in capsys.readouterr().err and not (tmp_path / "c").exists()
    assert main([*args, "--out", str(tmp_path / "d"), "--init-from", str(tmp_path / "b" / "last.pt")]) == 0


def test_resuming_a_run_for_more_epochs_points_to_init_from(tmp_path):
    run(tiny(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"epochs: 1 -> 3.*--init-from .*last.pt --epochs N"):
        run(tiny(tmp_path / "run", epochs=3, resume=True))


def test_resume_of_a_folder_without_a_run_starts_from_the_init_from_weights(tmp_path, initial_weights, capsys):
    """--resume --init-from on an empty --out (a script that always passes --resume): nothing to
    resume, so the new run starts from the checkpoint's weights (read back with checkpoint.load),
    as it would without --resume."""
    run(tiny(tmp_path / "source", seed=1))
    source = tmp_path / "source" / "last.pt"
    saved = checkpoint.load(source)["model"]
    run(tiny(tmp_path / "new", seed=2, init_from=str(source), resume=True))
    assert "nothing to resume" in capsys.readouterr().out
    assert set(initial_weights[-1]) == set(saved)
    for name, value in saved.items():
        assert torch.equal(initial_weights[-1][name], value), name


ARGS = ["--dataset", "synthetic", "--width", "0.125", "--T", "2", "--epochs", "1", "--batch-size", "32",
        "--no-progress"]


@pytest.mark.parametrize("given", ["a checkpoint without weights", "a bare state dict", "a folder"])
def test_what_is_not_an_snn_train_checkpoint_exits_2_naming_it(tmp_path, capsys, given):
    """--init-from must name a checkpoint of snn.train with model weights: a file written by
    checkpoint.save without "model", a state dict saved with torch.save (no digest) and a folder are
    each refused with exit 2, one line naming the path, and no run folder."""
    path = tmp_path / "given.pt"
    if given == "a checkpoint without weights":
        checkpoint.save(path, {"epoch": 1, "history": []})
        fragment = "lacks ['model']"
    elif given == "a bare state dict":
        torch.save({"w": torch.zeros(2)}, path)
        fragment = "no integrity digest"
    else:
        path.mkdir()
        fragment = "no such file"
    assert main([*ARGS, "--out", str(tmp_path / "run"), "--init-from", str(path)]) == 2
    one_line_error(capsys.readouterr().err, f"--init-from {path}" if given == "a folder" else str(path), fragment)
    assert not (tmp_path / "run").exists()


def test_weights_with_entries_this_model_lacks_are_refused(tmp_path):
    """A cifarnet trained with its default classifier biases, into a cifarnet built with bias=False:
    the checkpoint's two classifier biases are unexpected here (and nothing is missing); refused
    naming them, before the run folder."""
    run(tiny(tmp_path / "biased"))
    with pytest.raises(ConfigError, match=r"do not fit this model \(unexpected: classifier\.0\.1\.bias, "
                                          r"classifier\.2\.0\.bias\)"):
        run(tiny(tmp_path / "plain", bias=False, init_from=str(tmp_path / "biased" / "last.pt")))
    assert not (tmp_path / "plain").exists()
