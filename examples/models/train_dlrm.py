#!/usr/bin/python3
"""A DLRM-like click model exported as TorchScript: <repository>/dlrm/1/model.pt,
dlrm/config.yaml and dlrm/reference.json.

  dense  FP32  [batch, 13]        -> bottom MLP 13 -> 64 -> 16
  sparse INT64 [batch, 8, 4]      -> 8 EmbeddingBag tables (10,000 x 16, sum
                                     over a fixed bag of 4 ids each)
  interaction: pairwise dot products of the 9 vectors (36) + the dense vector
  -> top MLP 52 -> 64 -> 1 -> sigmoid = prob FP32 [batch, 1]

Random weights plus a few training steps on synthetic clicks. About 3 s.
"""
import numpy as np
import torch

import model_repo

TABLES, ROWS, DIM, BAG, DENSE = 8, 10_000, 16, 4, 13

CONFIG = f"""\
# DLRM-like click model (examples/models/train_dlrm.py).
backend: torchscript
max_batch_size: 256
inputs:
  - name: dense
    datatype: FP32
    dims: [{DENSE}]
  - name: sparse
    datatype: INT64
    dims: [{TABLES}, {BAG}]
outputs:
  - name: prob
    datatype: FP32
    dims: [1]
dynamic_batching:
  max_queue_delay_us: 200
instances: {{count: 2, threads: 1}}
"""


def mlp(sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


class Dlrm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bottom = torch.nn.Sequential(mlp([DENSE, 64, DIM]), torch.nn.ReLU())
        self.tables = torch.nn.ModuleList(
            [torch.nn.EmbeddingBag(ROWS, DIM, mode="sum") for _ in range(TABLES)])
        n = TABLES + 1
        li, lj = torch.tril_indices(n, n, offset=-1)
        self.register_buffer("li", li)
        self.register_buffer("lj", lj)
        self.top = mlp([n * (n - 1) // 2 + DIM, 64, 1])

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        x = self.bottom(dense)
        vectors = [x]
        for t, table in enumerate(self.tables):
            # A 2-D input is a batch of fixed-size bags: no offsets needed.
            vectors.append(table(sparse[:, t, :]))
        v = torch.stack(vectors, dim=1)                 # [batch, 9, DIM]
        z = torch.bmm(v, v.transpose(1, 2))             # [batch, 9, 9]
        pairs = z[:, self.li, self.lj]                  # [batch, 36]
        return torch.sigmoid(self.top(torch.cat([x, pairs], dim=1)))


def main():
    args = model_repo.parse_args(__doc__)
    torch.manual_seed(args.seed)
    model = Dlrm()
    opt = torch.optim.Adagrad(model.parameters(), lr=0.05)
    for _ in range(20):
        dense = torch.randn(256, DENSE)
        sparse = torch.randint(0, ROWS, (256, TABLES, BAG))
        clicks = ((dense[:, 0] + (sparse[:, 0, 0] % 2) * 0.5) > 0.5).float().unsqueeze(1)
        loss = torch.nn.functional.binary_cross_entropy(model(dense, sparse), clicks)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    scripted = torch.jit.script(model)
    scripted.save(f"{model_repo.version_dir(args.repository, 'dlrm')}/model.pt")
    model_repo.write_config(args.repository, "dlrm", CONFIG)

    rng = np.random.default_rng(args.seed + 1)
    cases = []
    with torch.inference_mode():
        for batch in (1, 8):
            dense = rng.standard_normal((batch, DENSE), dtype=np.float32)
            sparse = rng.integers(0, ROWS, (batch, TABLES, BAG), dtype=np.int64)
            prob = scripted(torch.from_numpy(dense), torch.from_numpy(sparse)).numpy()
            cases.append({"inputs": [model_repo.tensor("dense", "FP32", dense),
                                     model_repo.tensor("sparse", "INT64", sparse)],
                          "outputs": [model_repo.tensor("prob", "FP32", prob)]})
    model_repo.write_reference(args.repository, "dlrm", cases, rtol=1e-4, atol=1e-6)
    print(f"dlrm: loss {loss.item():.4f}, wrote {args.repository}/dlrm")


if __name__ == "__main__":
    main()
