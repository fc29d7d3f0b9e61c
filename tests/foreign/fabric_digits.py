"""Lightning Fabric's "Convert PyTorch code to Fabric" loop on scikit-learn's digits, written
for asha_hpc as the README's Fabric paragraph says: fabric.load/fabric.save of a file in the
trial's checkpoint folder, the random state in the checkpoint, one TensorBoard run per
trial. Each epoch's first batch index goes to trial.dir/"batches" (a test compares a promoted
trial with one trained straight through)."""
import lightning as L
import torch
import torch.nn.functional as F
from lightning.fabric.loggers import TensorBoardLogger
from sklearn.datasets import load_digits


def train(trial):
    fabric = L.Fabric(accelerator="cpu", devices=1,
                      loggers=TensorBoardLogger(root_dir=trial.dir / "tb", version=0))
    fabric.launch()
    fabric.seed_everything(trial.seed)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    dataset = torch.utils.data.TensorDataset(x[:1400], y[:1400])
    dataloader = fabric.setup_dataloaders(
        torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True))
    model = torch.nn.Sequential(torch.nn.Linear(64, trial.hparams["hidden"]), torch.nn.ReLU(),
                                torch.nn.Linear(trial.hparams["hidden"], 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.hparams["lr"])
    model, optimizer = fabric.setup(model, optimizer)

    state = {"model": model, "optimizer": optimizer, "epoch": 0, "rng": torch.get_rng_state()}
    if trial.latest_checkpoint:
        fabric.load(trial.latest_checkpoint / "state.ckpt", state)
        torch.set_rng_state(state["rng"])
    for segment in trial.segments():
        for epoch in range(state["epoch"], segment.length):
            model.train()
            for i, (data, target) in enumerate(dataloader):
                if i == 0:
                    with open(trial.dir / "batches", "a") as f:
                        f.write(f"{epoch} {target[:8].tolist()}\n")
                optimizer.zero_grad()
                loss = F.cross_entropy(model(data), target)
                fabric.backward(loss)
                optimizer.step()
            model.eval()
            with torch.no_grad():
                val_loss = F.cross_entropy(model(x[1400:]), y[1400:]).item()
            fabric.log_dict({"val_loss": val_loss, "epoch": epoch}, step=epoch)
            trial.report_metrics(epoch + 1, val_loss=val_loss)
        state.update(epoch=segment.length, rng=torch.get_rng_state())
        with trial.save_checkpoint(length=segment.length) as d:
            fabric.save(d / "state.ckpt", state)
        segment.report(val_loss=val_loss)
