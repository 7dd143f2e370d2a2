"""A small PyTorch DDP job: 2 workers, gloo backend, a tiny regression model.

Lathe injects MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK (framework:
pytorch), so `init_process_group(init_method="env://")` finds the peers.
Each rank trains on its own shard; DDP averages the gradients, so every rank
ends with the same parameters. The last line prints a digest of them, which
the integration test compares across ranks.
"""
import hashlib
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def main():
    dist.init_process_group(backend="gloo", init_method="env://")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts them)
    model = DistributedDataParallel(torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1000 + rank)  # a different shard per rank
    w_true = torch.arange(8, dtype=torch.float32) / 8
    steps = int(os.environ.get("STEPS", "50"))
    for step in range(steps):
        x = torch.randn(64, 8, generator=gen)
        y = (x @ w_true).unsqueeze(1)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            print(f"rank {rank}/{world} step {step} loss {loss.item():.5f}", flush=True)
    digest = hashlib.sha256()
    for p in model.module.parameters():
        digest.update(p.detach().numpy().tobytes())
    print(f"rank {rank} params_sha256 {digest.hexdigest()}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
