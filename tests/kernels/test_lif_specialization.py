"""How many compiled Triton kernels a configuration costs, and with which options, checked without
a GPU.

Triton's JIT compiles one kernel per specialization key: constexpr values, dtypes, and for each
specialized integer argument its class (== 1 becomes a constant, % 16 == 0 gets a divisibility
hint, anything else nothing; >= 2^31 makes it i64). The kernels specialize N (for vector access)
and nothing else that varies with the data: T, NB, vth, decay and alpha are plain runtime values.
So per configuration there are exactly three variants, N == 1, N % 16 == 0 and any other N, and
a new T, alpha or batch size within a class compiles nothing. The keys are computed by Triton's
own binder for a CUDA sm_90 target (`tools.compile_check.specialize`), in a subprocess
without the interpreter (under it `@triton.jit` builds no JIT function).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# (direction, T, N, alpha, state) -> specialization key, for fp32 hard reset, tanh surrogate
_SCRIPT = r"""
import json, sys, torch
from tools import compile_check
from kernels.lif.params import LIFParams
keys = {}
for direction, T, N, alpha, state in json.loads(sys.argv[1]):
    launch = compile_check.host_launch(direction, T, N, torch.float32, LIFParams(alpha=alpha), state)
    keys[f"{direction} {T} {N} {alpha} {state}"] = repr(compile_check.specialization_key(*launch))
print(json.dumps(keys))
"""

BATCHES = (1, 3, 8, 13, 128)
CLASS_16 = [b * 64 * 8 * 8 for b in BATCHES] + [16, 48, 4096, 1 << 20]  # N % 16 == 0
CLASS_OTHER = [b * 3 * 7 * 7 for b in BATCHES if b % 16] + [2, 7, 8, 15, 17, 1000, 4099]  # NB = ceil(N/8) varies too
CLASS_ONE = [1]


CONFIGS = [("fwd", "exact"), ("fwd", None), ("fwd", "compact"), ("bwd", "exact"), ("bwd", "compact")]
CASES = [(direction, T, N, alpha, state) for direction, state in CONFIGS for N in CLASS_16 + CLASS_OTHER + CLASS_ONE
         for T, alpha in ((1, 1.0), (4, 1.0), (7, 3.7))]


@pytest.fixture(scope="module")
def keys() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(CASES)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("direction,state", CONFIGS)
def test_three_variants_per_configuration(keys, direction, state):
    mine = [(T, N, alpha) for (d, T, N, alpha, s) in CASES if (d, s) == (direction, state)]
    key = {(T, N, alpha): keys[f"{direction} {T} {N} {alpha} {state}"] for T, N, alpha in mine}
    by_class = {name: {key[T, N, alpha] for T, N, alpha in mine if N in members}
                for name, members in (("16", CLASS_16), ("other", CLASS_OTHER), ("one", CLASS_ONE))}
    # within a class, T, alpha, batch size and NB change nothing
    assert {name: len(k) for name, k in by_class.items()} == {"16": 1, "other": 1, "one": 1}
    assert len(set(key.values())) == 3


def test_fma_contraction_off_in_forward_on_in_backward(keys):
    # The interpreter never contracts, so only the launch options can show this: a contracted
    # `decay * u + x` in the forward may flip a spike at a threshold tie against the reference.
    for case, key in keys.items():
        fusion = "('enable_fp_fusion', True)" in key
        assert fusion == case.startswith("bwd"), (case, key)
