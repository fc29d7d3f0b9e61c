"""Callbacks that run a framework's own training loop as an asha_hpc trial.

- ``asha_hpc.integrations.lightning.AshaCallback``: PyTorch Lightning (``lightning`` or
  ``pytorch_lightning``), lengths in epochs (or optimizer steps);
- ``asha_hpc.integrations.transformers.AshaCallback``: Hugging Face ``Trainer``, lengths in steps.

They import their framework only when used (in the job, never in the master).
"""
