"""--init-from: a new run that starts from another run's weights (fine-tuning, or training a
finished run further), and the errors of a checkpoint that does not fit."""

import pytest
import torch

from snn.train import Config, ConfigError, checkpoint, main, prepare, run


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
