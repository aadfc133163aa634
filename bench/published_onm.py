"""Open Neuromorphic's published GPU numbers for the SNN library benchmark: theirs, not measured
here, copied from the files of the repository open-neuromorphic/open-neuromorphic.github.io
(numbers as stored, seconds unless noted) so that docs/performance.md can show them beside ours.

FORWARD_BACKWARD_2023: content/post/framework-benchmarking/data.csv at commit 5288b0a7 (2023-08-12):
  mean forward and backward seconds per (framework, n); the page of that commit: batch size 10,
  T = 500, averaged over 100 runs on an NVIDIA RTX 2070 (8 GB).
TOTAL_16K_2024 / MEMORY_16K_2024: content/blog/spiking-neural-network-framework-benchmarking/
  framework-benchmarking-16k.json ("Time (s)", forward + backward) and -mem-16k.json ("Max memory
  usage (GB)", torch.cuda.max_memory_allocated) at commit 872e38bb, n = 16384. The page's notes:
  07/11/2023 "run on a RTX 3090 with a batchsize of 16", 19/2/2024 Norse updated (correct neuron
  model and torch.compile), and "Benchmarks were run on a NVIDIA RTX 4090 with 24GB of VRAM".
"""

FORWARD_BACKWARD_2023 = {
    'SpikingJelly CuPy v0.0.0.0.15': {
        (512, 'forward'): 0.0006135691894344025,
        (4096, 'forward'): 0.006756678976193823,
        (16384, 'forward'): 0.021720967341944116,
        (512, 'backward'): 0.0005310264037526948,
        (4096, 'backward'): 0.009100131555037066,
        (16384, 'backward'): 0.15093968595777238,
    },
    'Rockpool v2.6': {
        (512, 'forward'): 0.3910966714223226,
        (4096, 'forward'): 0.3723260958989461,
        (16384, 'forward'): 0.5532882809638977,
        (512, 'backward'): 0.22014141082763672,
        (4096, 'backward'): 0.48990139961242674,
        (16384, 'backward'): 1.8858092625935872,
    },
    'Rockpool EXODUS v2.6': {
        (512, 'forward'): 0.0015773353892545971,
        (4096, 'forward'): 0.021149432031731856,
        (16384, 'forward'): 0.208259654045105,
        (512, 'backward'): 0.0014320471155361866,
        (4096, 'backward'): 0.01833481571891091,
        (16384, 'backward'): 0.06904829781630943,
    },
    'Sinabs v1.2.8': {
        (512, 'forward'): 0.06968937249019228,
        (4096, 'forward'): 0.06567606618327479,
        (16384, 'forward'): 0.19781132177873093,
        (512, 'backward'): 0.12154525869032916,
        (4096, 'backward'): 0.3723318576812744,
        (16384, 'backward'): 1.4768603642781575,
    },
    'Sinabs EXODUS v1.1.2': {
        (512, 'forward'): 0.0007536293603283351,
        (4096, 'forward'): 0.019232586451939173,
        (16384, 'forward'): 0.19810709086331454,
        (512, 'backward'): 0.0020558245993101583,
        (4096, 'backward'): 0.01907735097975958,
        (16384, 'backward'): 0.063108891248703,
    },
    'snnTorch v0.7.0': {
        (512, 'forward'): 0.1372397263844808,
        (4096, 'forward'): 0.1441298382622855,
        (16384, 'forward'): 0.810722827911377,
        (512, 'backward'): 0.08307052612304687,
        (4096, 'backward'): 0.17454524834950766,
        (16384, 'backward'): 2.5700149536132812,
    },
    'Norse v1.0.0': {
        (512, 'forward'): 0.13558193842569988,
        (4096, 'forward'): 0.13515655199686685,
        (16384, 'forward'): 0.2118306875228882,
        (512, 'backward'): 0.12878863513469696,
        (4096, 'backward'): 0.21144869327545165,
        (16384, 'backward'): 0.8892718156178793,
    },
    'Lava DL v0.4.0.dev0': {
        (512, 'forward'): 0.001036392468862583,
        (4096, 'forward'): 0.013559699058532715,
        (16384, 'forward'): 0.130571186542511,
        (512, 'backward'): 0.0012431368463301673,
        (4096, 'backward'): 0.01054878360346744,
        (16384, 'backward'): 0.13196541368961334,
    },
}
TOTAL_16K_2024 = {
    'Rockpool v2.7': 3.065645217895508,
    'Rockpool EXODUS v2.7': 0.1900070892913,
    'Sinabs v1.2.10': 2.1902361313501992,
    'Sinabs EXODUS v1.1.2': 0.1787298380159863,
    'Norse v1.0.0': 0.1094947740009852,
    'snnTorch v0.7.0': 3.0782283147176104,
    'SpikingJelly PyTorch v0.0.15': 1.341035354705084,
    'Lava DL v0.4.0.dev0': 0.1707893848419189,
    'SpikingJelly CuPy v0.0.15': 0.1181720702639429,
    'Spyx full-precision v0.1.18': 0.076356463962131,
    'Spyx half-precision v0.1.18': 0.0470149461613144,
}
MEMORY_16K_2024 = {
    'Rockpool v2.7': 8.175223808,
    'Rockpool EXODUS v2.7': 9.489882112,
    'Sinabs v1.2.10': 6.486161920000001,
    'Sinabs EXODUS v1.1.2': 7.937069056,
    'Norse v1.0.0': 5.427777024,
    'snnTorch v0.7.0': 6.964052992,
    'SpikingJelly PyTorch v0.0.15': 6.856966144,
    'Lava DL v0.4.0.dev0': 6.8933463040000005,
    'SpikingJelly CuPy v0.0.15': 5.963712,
}
