"""A PyTorchTrial as Determined's docs write one, whose batches take 50 ms each: a pause or a
stop signal lands mid-segment (tests/slurm/test_slurm_determined.py, and the two-rank pause of
tests/local/test_determined_pytorch.py). ``--report-every N`` sets the Trainer's
reporting_period, ``--say-batches`` prints each batch trained, ``--workers N``
gives the data loaders N worker processes."""
import argparse
import time

import torch

from asha_hpc.compat import determined as det
from asha_hpc.compat.determined import pytorch


SAY_BATCHES = False
WORKERS = 0  # the loaders' worker processes


class SlowTrial(pytorch.PyTorchTrial):
    def __init__(self, context, hparams):
        self.context = context
        self.model = context.wrap_model(torch.nn.Linear(4, 1))
        self.opt = context.wrap_optimizer(torch.optim.SGD(self.model.parameters(),
                                                          lr=hparams["lr"]))

    def _data(self, seed):
        x = torch.randn(64, 4, generator=torch.Generator().manual_seed(seed))
        return pytorch.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)),
                                  batch_size=8, num_workers=WORKERS)

    def build_training_data_loader(self):
        return self._data(0)

    def build_validation_data_loader(self):
        return self._data(1)

    def train_batch(self, batch, epoch_idx, batch_idx):
        time.sleep(0.05)
        if SAY_BATCHES:
            print(f"rank {self.context.distributed.rank} trained batch {batch_idx + 1}",
                  flush=True)
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.model(x), y)
        self.context.backward(loss)
        self.context.step_optimizer(self.opt)
        return {"loss": loss}

    def evaluate_batch(self, batch, batch_idx):
        x, y = batch
        return {"validation_loss": torch.nn.functional.mse_loss(self.model(x), y).item()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--report-every", type=int, default=5)
    parser.add_argument("--say-batches", action="store_true")
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    SAY_BATCHES, WORKERS = args.say_batches, args.workers
    info = det.get_cluster_info()
    with pytorch.init() as context:
        trial = SlowTrial(context, info.trial.hparams)
        pytorch.Trainer(trial, context).fit(max_length=pytorch.Batch(400),
                                            latest_checkpoint=info.latest_checkpoint,
                                            reporting_period=pytorch.Batch(args.report_every))
