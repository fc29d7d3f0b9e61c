"""Foreign-style: Ray Tune's function-trainable tutorial (``train_mnist(config)`` with
``train.get_checkpoint()`` at the top, ``train.report(..., checkpoint=...)`` every epoch,
``mode="max"`` on ``mean_accuracy``), ported to asha_hpc the way a Ray user first does it.
The data is a synthetic stand-in for MNIST (no download). ``HOW`` picks the port:

- ``segments``: the right port: each segment trains to ``segment.length``;
- ``max_epochs``: the loop kept Ray's ``range(MAX_EPOCHS)`` (in Ray the scheduler kills the
  trainable); every segment trains all of it; ``max_epochs_report_first``: the same, with the
  report before the checkpoint (Ray's ``train.report(metrics, checkpoint=...)`` order);
- ``str_metric``: the accuracy reported as a formatted string;
- ``return_dict``: Ray's old function API, the final metrics returned instead of reported."""
import os

import torch
import torch.nn.functional as F
from torch import nn

MAX_EPOCHS = 6
HOW = os.environ.get("RAY_PORT_HOW", "segments")


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, kernel_size=3)
        self.fc = nn.Linear(3 * 3 * 3, 4)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        return F.log_softmax(self.fc(x.view(-1, 27)), dim=1)


def data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > 0).long() + 2 * (x[:, 0, 4:].mean((1, 2)) > 0).long()
    return x, y


def train_epoch(model, optimizer, x, y):
    model.train()
    for i in range(0, len(x), 32):
        optimizer.zero_grad()
        F.nll_loss(model(x[i:i + 32]), y[i:i + 32]).backward()
        optimizer.step()


def test(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train_mnist(trial):
    config = trial.hparams
    torch.manual_seed(0)
    train_x, train_y = data(0)
    test_x, test_y = data(1)
    model = ConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    start = 0
    checkpoint = trial.latest_checkpoint  # was: train.get_checkpoint()
    if checkpoint:
        state = torch.load(os.path.join(checkpoint, "checkpoint.pt"))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
    for segment in trial.segments():
        end = MAX_EPOCHS if HOW.startswith("max_epochs") else segment.length
        for epoch in range(start, end):
            train_epoch(model, optimizer, train_x, train_y)
            acc = test(model, test_x, test_y)
            trial.report_metrics(epoch + 1, mean_accuracy=acc)
        start = end
        if HOW == "max_epochs_report_first":
            segment.report(mean_accuracy=test(model, test_x, test_y))
        with trial.save_checkpoint(length=end) as tmpdir:  # was: a tempfile.TemporaryDirectory
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "epoch": end}, os.path.join(tmpdir, "checkpoint.pt"))
        if HOW == "max_epochs_report_first":
            continue
        acc = test(model, test_x, test_y)
        if HOW == "return_dict":
            return {"mean_accuracy": acc}
        segment.report(mean_accuracy=f"{acc:.4f}" if HOW == "str_metric" else acc)

