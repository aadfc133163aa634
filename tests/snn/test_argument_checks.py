"""Bad arguments to the snn models and Dspike's selection: errors that name the argument, the
value and what is accepted, raised before any computation."""

import math

import pytest
import torch
import torch.nn.functional as F

import snn
from snn.dspike import select_temperature
from snn.models import build
from snn.models.__main__ import main as models_cli

TINY = {"width": 1 / 16, "input_size": 16}


@pytest.mark.parametrize("width,error", [(math.inf, ValueError), (-math.inf, ValueError), (math.nan, ValueError),
                                         (0.0, ValueError), ("1", TypeError), (True, TypeError)])
def test_build_names_a_bad_width(width, error):
    with pytest.raises(error, match=r"width must be a finite real number in \(0, inf\]"):
        build("resnet19", 10, width=width)


def test_models_cli_bad_width_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        models_cli(["--width", "inf"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "width must be a finite real number" in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
def test_integer_images_are_refused_with_the_dtype(dtype):
    model = build("cifarnet", 10, **TINY)
    with pytest.raises(TypeError, match=rf"model input x must be a floating-point tensor .*got dtype {dtype}"):
        model(torch.zeros(2, 3, 16, 16, dtype=dtype), T=2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_float_input_of_another_dtype_is_refused_not_converted(dtype):
    model = build("cifarnet", 10, **TINY)
    with pytest.raises(TypeError, match=rf"model input x has dtype {dtype} but the model's parameters are "
                                        rf"torch.float32"):
        model(torch.zeros(2, 3, 16, 16, dtype=dtype), T=2)


def test_float64_model_takes_float64_input():
    torch.manual_seed(0)
    model = build("resnet19", 10, backend="torch", width=1 / 32).double()
    logits = model(torch.rand(2, 3, 8, 8, dtype=torch.float64), T=2)
    assert logits.dtype == torch.float64 and logits.shape == (2, 10) and torch.isfinite(logits).all()


def test_autocast_accepts_an_input_of_another_float_dtype():
    torch.manual_seed(0)
    model = build("resnet19", 10, backend="torch", width=1 / 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.rand(2, 3, 8, 8, dtype=torch.bfloat16), T=2)
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("kwargs,error,words", [
    ({"b": math.inf}, ValueError, r"b must be a finite real number in \[2.35099e-38, 8.50706e\+37\]"),
    ({"b": 1e38}, ValueError, r"b must be a finite real number in \[2.35099e-38"),
    ({"b": 2.0 ** 126, "db": 1e37}, ValueError, r"b \+ db must be <= 8.5070592e\+37"),
    ({"db": math.nan}, ValueError, "db must be a finite real number"),
    ({"eps": math.inf}, ValueError, "eps must be a finite real number"),
    ({"chunk": 0}, ValueError, "chunk must be an int >= 1"),
    ({"chunk": 2.5}, TypeError, "chunk must be an int"),
    ({"loss_fn": None}, TypeError, "loss_fn must be a callable"),
])
def test_select_temperature_names_a_bad_argument(kwargs, error, words):
    model = build("resnet19", 10, width=1 / 32, surrogate="dspike", alpha=3.0)
    x, y = torch.randn(1, 3, 8, 8), torch.tensor([0])
    kwargs = {"loss_fn": F.cross_entropy, **kwargs}
    with pytest.raises(error, match=words):
        select_temperature(model, x, y, T=1, **kwargs)
    assert all(m.alpha == 3.0 for m in snn.lif_layers(model))  # nothing was changed
