#!/usr/bin/python3
"""An MLP 256 -> 512 -> 256 -> 1 (ReLU), trained for a few steps on synthetic
regression data and exported as TorchScript: <repository>/mlp/1/model.pt,
mlp/config.yaml and mlp/reference.json. About 2 s with Debian's python3-torch.
"""
import numpy as np
import torch

import model_repo

CONFIG = """\
# MLP 256 -> 512 -> 256 -> 1 (examples/models/train_mlp.py).
backend: torchscript
max_batch_size: 256
inputs:
  - name: x
    datatype: FP32
    dims: [256]
outputs:
  - name: y
    datatype: FP32
    dims: [1]
dynamic_batching:
  max_queue_delay_us: 200
instances: {count: 2, threads: 1}
"""


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(256, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def main():
    args = model_repo.parse_args(__doc__)
    torch.manual_seed(args.seed)
    model = Mlp()
    # A target the net can learn a little of in a few steps.
    w = torch.randn(256, 1) / 16.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(50):
        x = torch.randn(256, 256)
        loss = torch.nn.functional.mse_loss(model(x), torch.tanh(x @ w))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    scripted = torch.jit.script(model)
    scripted.save(f"{model_repo.version_dir(args.repository, 'mlp')}/model.pt")
    model_repo.write_config(args.repository, "mlp", CONFIG)

    rng = np.random.default_rng(args.seed + 1)
    cases = []
    with torch.inference_mode():
        for batch in (1, 8):
            x = rng.standard_normal((batch, 256), dtype=np.float32)
            y = scripted(torch.from_numpy(x)).numpy()
            cases.append({"inputs": [model_repo.tensor("x", "FP32", x)],
                          "outputs": [model_repo.tensor("y", "FP32", y)]})
    model_repo.write_reference(args.repository, "mlp", cases, rtol=1e-4, atol=1e-5)
    print(f"mlp: loss {loss.item():.4f}, wrote {args.repository}/mlp")


if __name__ == "__main__":
    main()
