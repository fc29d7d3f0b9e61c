"""``det.pytorch.DataLoader``: torch's DataLoader arguments, kept until the Trainer knows the
epoch, the rank and where a continued trial stopped. Each epoch's batches are a pure function
of (trial seed, epoch), so a trial continued from its checkpoint in a new job sees the batches
it would have seen had it never stopped (Determined's reason for its own DataLoader); with
several ranks, rank ``r`` of ``n`` trains batches ``r, r + n, ...`` of each epoch."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils import data

from ....job import loader_workers

TorchData = dict[str, torch.Tensor] | Sequence[torch.Tensor] | torch.Tensor


class DataLoader:
    """Takes ``torch.utils.data.DataLoader``'s arguments (a map-style dataset)."""

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool = False,
                 sampler: Any = None, batch_sampler: Any = None, num_workers: int = 0,
                 collate_fn: Any = None, pin_memory: bool = False, drop_last: bool = False,
                 timeout: float = 0, worker_init_fn: Any = None,
                 multiprocessing_context: Any = None, generator: Any = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False) -> None:
        if isinstance(dataset, data.IterableDataset):
            raise ValueError("det.pytorch.DataLoader: an IterableDataset cannot be resumed at a "
                             "batch; return a torch.utils.data.DataLoader from "
                             "build_training_data_loader() and call "
                             "context.experimental.disable_dataset_reproducibility_checks()")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("det.pytorch.DataLoader: batch_sampler is mutually exclusive with "
                             "batch_size, shuffle, sampler and drop_last (as in torch)")
        if sampler is not None and shuffle:
            raise ValueError("det.pytorch.DataLoader: sampler is mutually exclusive with "
                             "shuffle (as in torch)")
        if batch_sampler is None and batch_size is None:
            raise ValueError("det.pytorch.DataLoader: batch_size=None without a batch_sampler "
                             "is not supported")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.drop_last = drop_last
        self.generator = generator
        self._loader_kwargs: dict[str, Any] = dict(
            num_workers=num_workers, pin_memory=pin_memory, timeout=timeout,
            worker_init_fn=worker_init_fn, multiprocessing_context=multiprocessing_context,
            persistent_workers=False)  # each epoch is a loader of its own here
        if collate_fn is not None:
            self._loader_kwargs["collate_fn"] = collate_fn
        if num_workers > 0 and prefetch_factor is not None:
            self._loader_kwargs["prefetch_factor"] = prefetch_factor

    def _epoch_batches(self, epoch: int, seed: int) -> list[list[int]]:
        """Every batch of epoch ``epoch`` (lists of dataset indices), the same in every job."""
        if self.batch_sampler is not None:
            return [list(b) for b in self.batch_sampler]
        if self.sampler is not None:
            order = list(self.sampler)
        elif self.shuffle:
            g = torch.Generator()
            g.manual_seed((seed * 1_000_003 + epoch) % (2 ** 63))
            order = torch.randperm(len(self.dataset), generator=g).tolist()
        else:
            order = list(range(len(self.dataset)))
        size = int(self.batch_size or 1)
        out = [order[i:i + size] for i in range(0, len(order), size)]
        if self.drop_last and out and len(out[-1]) < size:
            out.pop()
        return out

    def _loader(self, batches: list[list[int]], seed: int = 0) -> data.DataLoader:
        """A loader of exactly ``batches``. Its own generator (it seeds the worker processes)
        keeps it off torch's global one: a loader started from the global generator would
        draw from it, and a trial continued in a new job (one more loader, at the batch it
        stopped at) or validated at a rung would then see other dropout masks than an unbroken
        run."""
        g = torch.Generator()
        g.manual_seed(seed % (2 ** 63))
        loader_workers.keep_through_sigterm()  # Slurm's scancel must not end them mid-batch
        return data.DataLoader(self.dataset, batch_sampler=batches, generator=g,
                               **self._loader_kwargs)

    def get_data_loader(self, repeat: bool = False, skip: int = 0, num_replicas: int = 1,
                        rank: int = 0) -> data.DataLoader:
        """Determined's method: one epoch's loader (``repeat`` is the Trainer's business here)."""
        return self._loader(self._epoch_batches(0, 0)[rank::num_replicas][skip:])

    def __len__(self) -> int:
        return len(self._epoch_batches(0, 0))


class _Epochs:
    """The training batches from a given batch on, epoch after epoch, for one rank: a
    ``det.pytorch.DataLoader`` reproducibly, any other iterable loader as it comes."""

    def __init__(self, loader: Any, seed: int, rank: int, size: int) -> None:
        self.loader, self.seed, self.rank, self.size = loader, seed, rank, size
        if isinstance(loader, DataLoader):
            per_rank = len(loader._epoch_batches(0, seed)) // size if size > 1 \
                else len(loader._epoch_batches(0, seed))
            self.epoch_len = per_rank
        else:
            try:
                self.epoch_len = len(loader)
            except TypeError:
                self.epoch_len = 0
        if self.epoch_len < 1:
            raise ValueError("build_training_data_loader(): the training data loader has no "
                             "batch (or no length): an epoch needs at least one batch")

    def batches(self, start: int) -> Iterator[tuple[int, Any]]:
        """(global batch index, batch) from batch ``start`` on, forever."""
        epoch, skip = divmod(start, self.epoch_len)
        idx = start
        while True:
            if isinstance(self.loader, DataLoader):
                mine = self.loader._epoch_batches(epoch, self.seed)[self.rank::self.size]
                it: Any = iter(self.loader._loader(mine[skip:self.epoch_len],
                                                   self.seed * 1_000_003 + epoch))
            else:
                it = iter(self.loader)
                for _ in range(skip):
                    next(it, None)
            for batch in it:
                yield idx, batch
                idx += 1
                if idx % self.epoch_len == 0:
                    break
            if idx % self.epoch_len:  # a loader shorter than its len(): the epoch ends here
                idx += self.epoch_len - idx % self.epoch_len
            epoch, skip = epoch + 1, 0


def to_device(obj: Any, device: Any) -> Any:
    """Tensors (in dicts, lists, tuples, named tuples, or anything with a ``to``) moved to
    ``device``; anything else as it is."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        moved = {k: to_device(v, device) for k, v in obj.items()}
        try:
            return type(obj)(moved)
        except TypeError:
            return moved
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    if hasattr(obj, "to") and callable(obj.to) and not isinstance(obj, type):
        try:
            return obj.to(device)
        except TypeError:
            return obj
    return obj
