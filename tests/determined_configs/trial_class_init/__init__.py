# Determined's "MnistTrial" entrypoint form: the Trial class exposed at the package's top level.
from determined.pytorch import PyTorchTrial  # noqa: F401  (never imported by plan or run)


class MnistTrial(PyTorchTrial):
    pass
