"""A Flax NNX classifier as Flax's MNIST tutorial writes it (an ``nnx.Module``, an
``nnx.Optimizer`` over optax's adamw, ``nnx.MultiMetric``, an ``@nnx.jit`` train step),
checkpointed with Orbax as Flax's "Save and load checkpoints" guide does (``nnx.split``, a
``StandardCheckpointer``, restore into ``nnx.eval_shape``'s abstract state), on scikit-learn's
digits (no download). Made a trial as the README's "JAX, Flax and Orbax" paragraph says: the
save finishes inside the checkpoint block, goes to ``path / "state"``, and the PRNG key that
shuffles the data is in the checkpoint."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


class MLP(nnx.Module):
    def __init__(self, din: int, dhidden: int, dout: int, *, rngs: nnx.Rngs):
        self.linear1 = nnx.Linear(din, dhidden, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.linear2 = nnx.Linear(dhidden, dout, rngs=rngs)

    def __call__(self, x):
        return self.linear2(self.dropout(nnx.relu(self.linear1(x))))


def loss_fn(model: MLP, batch):
    logits = model(batch["image"])
    loss = optax.softmax_cross_entropy_with_integer_labels(
        logits=logits, labels=batch["label"]).mean()
    return loss, logits


@nnx.jit
def train_step(model: MLP, optimizer: nnx.Optimizer, metrics: nnx.MultiMetric, batch):
    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
    (loss, logits), grads = grad_fn(model, batch)
    metrics.update(loss=loss, logits=logits, labels=batch["label"])
    optimizer.update(model, grads)


@nnx.jit
def eval_step(model: MLP, metrics: nnx.MultiMetric, batch):
    loss, logits = loss_fn(model, batch)
    metrics.update(loss=loss, logits=logits, labels=batch["label"])


def data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=0)
    return (jnp.asarray(x_tr), jnp.asarray(y_tr)), (jnp.asarray(x_va), jnp.asarray(y_va))


def make(hp, seed):
    model = MLP(64, hp["hidden"], 10, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
    optimizer = nnx.Optimizer(model, optax.adamw(hp["learning_rate"], hp["momentum"]),
                              wrt=nnx.Param)
    return model, optimizer


def train(trial):
    hp = trial.hparams
    (x_tr, y_tr), (x_va, y_va) = data()
    batch_size = hp["batch_size"]
    metrics = nnx.MultiMetric(accuracy=nnx.metrics.Accuracy(), loss=nnx.metrics.Average("loss"))
    checkpointer = ocp.StandardCheckpointer()

    model, optimizer = make(hp, trial.seed)
    key = jax.random.key(trial.seed)
    epoch = 0
    if trial.latest_checkpoint:
        # the guide's restore: the abstract state of a model made the same way, then merge
        abstract = nnx.eval_shape(lambda: make(hp, 0))
        graphdef, abstract_state = nnx.split(abstract)
        state = checkpointer.restore(trial.latest_checkpoint / "state", abstract_state)
        model, optimizer = nnx.merge(graphdef, state)
        saved = json.loads((trial.latest_checkpoint / "progress.json").read_text())
        epoch = saved["epoch"]
        key = jax.random.wrap_key_data(jnp.asarray(saved["key"], dtype=jnp.uint32))
        print(f"restored at epoch {epoch}", flush=True)

    for segment in trial.segments():
        while epoch < segment.length and not trial.should_stop():
            model.train()
            key, shuffle = jax.random.split(key)
            order = jax.random.permutation(shuffle, len(x_tr))
            for i in range(0, len(x_tr) - batch_size + 1, batch_size):
                idx = order[i:i + batch_size]
                train_step(model, optimizer, metrics, {"image": x_tr[idx], "label": y_tr[idx]})
            metrics.reset()
            epoch += 1
        with trial.save_checkpoint(length=epoch) as path:
            checkpointer.save(path / "state", nnx.split((model, optimizer))[1])
            checkpointer.wait_until_finished()  # Orbax saves in the background
            (path / "progress.json").write_text(json.dumps(
                {"epoch": epoch, "key": np.asarray(jax.random.key_data(key)).tolist()}))
        if epoch < segment.length:
            return
        model.eval()
        eval_step(model, metrics, {"image": x_va, "label": y_va})
        computed = metrics.compute()
        metrics.reset()
        segment.report(val_loss=float(computed["loss"]), val_accuracy=float(computed["accuracy"]))
    checkpointer.close()
