# A Trial class as Determined's PyTorchTrial examples define one (never imported by plan).
import determined.pytorch  # noqa: F401  (not installed here: plan must not import this file)


class DigitsTrial:
    def __init__(self, context):
        self.context = context
