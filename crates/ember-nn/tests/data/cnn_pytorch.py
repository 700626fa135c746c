"""Writes cnn_pytorch.safetensors and cnn_pytorch.json: a small CNN trained by PyTorch.

The model (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Conv2d with bias=False, ReLU,
AdaptiveAvgPool2d, Flatten, Linear) takes 20 Adam steps on random data, so its weights and
BatchNorm running statistics are PyTorch-trained, not initial; the file is
`safetensors.torch.save_file(model.state_dict())`, and the JSON holds an input and the model's
eval-mode output on it (tests/pytorch_cnn.rs).

    python3 cnn_pytorch.py   # torch 2.x, safetensors
"""
import json

import torch
from safetensors.torch import save_file
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1),
    nn.BatchNorm2d(4),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(4, 6, 3, stride=1, padding="same", bias=False),
    nn.ReLU(),
    nn.AdaptiveAvgPool2d((2, 2)),
    nn.Flatten(),
    nn.Linear(24, 3),
)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(20):
    x = torch.randn(8, 1, 10, 10)
    y = torch.randint(0, 3, (8,))
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
model.eval()
x = torch.randn(2, 1, 10, 10)
with torch.no_grad():
    out = model(x)
save_file(model.state_dict(), "cnn_pytorch.safetensors")
with open("cnn_pytorch.json", "w") as f:
    json.dump(
        {
            "torch": torch.__version__,
            "names": list(model.state_dict().keys()),
            "input": {"dtype": "float32", "shape": list(x.shape), "data": x.flatten().tolist()},
            "output": {"dtype": "float32", "shape": list(out.shape), "data": out.flatten().tolist()},
        },
        f,
        indent=1,
    )
