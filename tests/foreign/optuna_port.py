"""Optuna's example pytorch_simple.py (define_model(trial), an objective that reports the
accuracy every epoch and prunes), on scikit-learn's digits, ported to asha_hpc the way the
README's "Moving from Ray Tune or Optuna" table says: suggest_* become hparams, trial.report
becomes trial.report_metrics, and `raise optuna.TrialPruned()` becomes TrainingEndedEarly (or is
kept: hparams prune_with "optuna").
The per-layer sizes are flat names; the code reads those of the layers it builds."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import asha_hpc

BATCHSIZE = 64
PRUNE_BELOW = 0.5  # the objective's own pruning rule (Optuna's MedianPruner needs a study)


def define_model(hparams):
    n_layers = hparams["n_layers"]
    layers = []
    in_features = 64
    for i in range(n_layers):
        out_features = hparams[f"n_units_l{i}"]
        layers.append(nn.Linear(in_features, out_features))
        layers.append(nn.ReLU())
        layers.append(nn.Dropout(hparams[f"dropout_l{i}"]))
        in_features = out_features
    layers.append(nn.Linear(in_features, 10))
    layers.append(nn.LogSoftmax(dim=1))
    return nn.Sequential(*layers)


def get_digits():
    x, y = load_digits(return_X_y=True)
    x_train, x_valid, y_train, y_valid = train_test_split(x / 16.0, y, test_size=0.25,
                                                          random_state=0)
    as_tensors = lambda a, b: (torch.tensor(a, dtype=torch.float32), torch.tensor(b))  # noqa: E731
    return as_tensors(x_train, y_train), as_tensors(x_valid, y_valid)


def objective(trial):
    torch.manual_seed(trial.seed)
    model = define_model(trial.hparams)
    optimizer_name = trial.hparams["optimizer"]
    lr = trial.hparams["lr"]
    optimizer = getattr(torch.optim, optimizer_name)(model.parameters(), lr=lr)
    (x_train, y_train), (x_valid, y_valid) = get_digits()

    start = 0
    if trial.latest_checkpoint:
        state = torch.load(trial.latest_checkpoint / "checkpoint.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]

    for segment in trial.segments():
        for epoch in range(start, segment.length):
            model.train()
            for i in range(0, len(x_train), BATCHSIZE):
                data, target = x_train[i:i + BATCHSIZE], y_train[i:i + BATCHSIZE]
                optimizer.zero_grad()
                output = model(data)
                loss = F.nll_loss(output, target)
                loss.backward()
                optimizer.step()

            model.eval()
            with torch.no_grad():
                pred = model(x_valid).argmax(dim=1)
                accuracy = (pred == y_valid).float().mean().item()

            trial.report_metrics(epoch + 1, accuracy=accuracy)  # trial.report(accuracy, epoch)
            if epoch >= 1 and accuracy < PRUNE_BELOW:  # if trial.should_prune():
                if trial.hparams.get("prune_with") == "optuna":  # a habit kept from Optuna
                    import optuna

                    raise optuna.TrialPruned()
                raise asha_hpc.TrainingEndedEarly(f"pruned: accuracy {accuracy:.3f}")
        start = segment.length
        with trial.save_checkpoint(length=start) as d:
            torch.save({"epoch": start, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict()}, d / "checkpoint.pt")
        segment.report(accuracy=accuracy)
