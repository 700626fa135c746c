"""Writes rng_extra.json: what PyTorch's default CPU generator returns for random calls beyond
parity/rng.json (strided and large fills, float64, bernoulli, dropout, every nn.init variant,
an explicit Generator), in rng.json's format. Run with PyTorch installed:
    python rng_extra.py > rng_extra.json
"""
import json
import math

import torch
import torch.nn.functional as F
from torch import nn

CALLS = {
    "randn_70000_every_997th": "torch.randn(70000)[::997]",
    "randn_16": "torch.randn(16)",
    "randn_f64_1000_every_37th": "torch.randn(1000, dtype=torch.float64)[::37]",
    "randn_f64_32": "torch.randn(32, dtype=torch.float64)",
    "normal_f64_40": "torch.empty(40, dtype=torch.float64).normal_(1.5, 0.7)",
    "normal_fn": "torch.normal(2.0, 3.0, size=(20,))",
    "normal_transposed": "torch.empty(6, 4).t().normal_()",
    "normal_sliced": "torch.empty(4, 12)[:, ::3].normal_(2.0, 0.5)",
    "uniform_transposed": "torch.empty(5, 4).t().uniform_(-1.0, 2.0)",
    "rand_70000_every_997th": "torch.rand(70000)[::997]",
    "uniform_f32_9": "torch.empty(9).uniform_(-0.3, 1.7)",
    "uniform_f64_9": "torch.empty(9, dtype=torch.float64).uniform_(-0.3, 1.7)",
    "randint_wide": "torch.randint(-5, 2**33, (10,))",
    "randint_small": "torch.randint(3, 10, (20,))",
    "randint_2_28": "torch.randint(0, 2**28, (5,))",
    "randint_below_2_28": "torch.randint(0, 2**28 - 1, (5,))",
    "randperm_1000": "torch.randperm(1000)",
    "bernoulli_scalar_f32": "torch.empty(200).bernoulli_(0.3)",
    "bernoulli_scalar_u8": "torch.empty(50, dtype=torch.uint8).bernoulli_(0.5)",
    "bernoulli_probs_f32": "torch.bernoulli(torch.linspace(0, 1, 200))",
    "bernoulli_probs_f64": "torch.bernoulli(torch.linspace(0, 1, 200, dtype=torch.float64))",
    "bernoulli_probs_strided": "torch.bernoulli(torch.linspace(0, 1, 12).reshape(3, 4).t())",
    "dropout_f32": "F.dropout(torch.ones(200), 0.3)",
    "dropout_module": "nn.Dropout(0.5)(torch.arange(20.0))",
    "dropout_f64": "F.dropout(torch.ones(50, dtype=torch.float64), 0.2)",
    "sequence": "[torch.randn(5), torch.randn(5), torch.randn(20), torch.randn(3, dtype=torch.float64), torch.rand(2), torch.randn(1)]",
    "kaiming_uniform_default": "nn.init.kaiming_uniform_(torch.empty(7, 5))",
    "kaiming_uniform_sqrt5": "nn.init.kaiming_uniform_(torch.empty(7, 5), a=math.sqrt(5))",
    "kaiming_normal_fan_out_relu": "nn.init.kaiming_normal_(torch.empty(20, 5), mode='fan_out', nonlinearity='relu')",
    "xavier_normal": "nn.init.xavier_normal_(torch.empty(7, 5))",
    "xavier_uniform_3d_gain2": "nn.init.xavier_uniform_(torch.empty(3, 4, 5), gain=2.0)",
    "init_normal": "nn.init.normal_(torch.empty(30), 0.0, 0.02)",
    "init_uniform": "nn.init.uniform_(torch.empty(30), -0.1, 0.1)",
    "embedding": "nn.Embedding(10, 3).weight",
    "linear_no_bias_then_rand": "[nn.Linear(5, 3, bias=False).weight, torch.rand(2)]",
    "generator_object": "(lambda g: [torch.randn(20, generator=g), torch.rand(3, generator=g), torch.randperm(8, generator=g), torch.rand(2)])(torch.Generator().manual_seed(123))",
}

DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.uint8: "uint8"}


def tensor(t):
    t = t.detach().contiguous()
    return {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data": t.flatten().tolist()}


cases = []
for seed in [0, 42]:
    for name, call in CALLS.items():
        torch.manual_seed(seed)
        out = eval(call)
        out = [tensor(t) for t in out] if isinstance(out, list) else tensor(out)
        cases.append({"name": f"{name}/{seed}", "seed": seed, "call": call, "output": out})
torch.manual_seed(2**32 + 5)
cases.append({"name": "seed_above_2_32", "seed": 2**32 + 5, "call": "torch.rand(3)", "output": tensor(torch.rand(3))})
print(json.dumps({"generator": "rng_extra.py", "torch": torch.__version__, "cases": cases}))
