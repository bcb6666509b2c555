"""Errors a user can cause. The CLI prints these as one clear message, without a traceback."""


class GlyphnetError(Exception):
    """A problem with the user's input: a file, a config value, an argument."""


class ConfigError(GlyphnetError):
    """One or more problems in a config; ``problems`` lists each as 'key: message'."""

    def __init__(self, problems, source=None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s){where}:\n{lines}")


class DataError(GlyphnetError):
    """A data file that is missing, truncated or not in the expected format."""


class TrainingDiverged(GlyphnetError):
    """The loss or the weights became non-finite; the model holds the last good weights."""

    def __init__(self, epoch, batch, lr, history=None, loss=None):
        self.epoch, self.batch, self.history = epoch, batch, history
        lr_hint = f" (it is {lr:g})" if lr is not None else ""
        if loss is not None and loss == loss and loss != float("inf"):
            what = (f"the loss exploded to {loss:.3g}, over a million times the first "
                    f"batch's")
        else:
            what = "the loss or the weights became NaN/inf"
        completed = len(history.epochs) if history is not None else epoch - 1
        kept = (f"the weights from the end of epoch {completed}, the last good one"
                if completed else "its initial weights (no epoch completed)")
        super().__init__(
            f"training diverged at epoch {epoch}, batch {batch}: {what}. Try a lower "
            f"learning rate{lr_hint}. The model keeps {kept}."
        )
