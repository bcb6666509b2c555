"""One small registry for every extension point: layers, losses, optimisers, data sets,
report figures and command-line sub-commands.

    LAYERS = Registry("layer")

    @LAYERS.register("dense")
    class Dense(Layer): ...

A registry is a dict from name to entry, so configs look entries up by name and list the
choices in their messages; ``register`` also sets ``entry.kind = name`` on classes.
"""


class Registry(dict):
    """Named entries of one kind (``what`` names the kind in error messages)."""

    def __init__(self, what):
        super().__init__()
        self.what = what

    def register(self, name, entry=None):
        """Add ``entry`` under ``name``; without ``entry``, a decorator that adds what it wraps."""
        def add(obj):
            if name in self:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            if isinstance(obj, type):
                obj.kind = name
            self[name] = obj
            return obj
        return add if entry is None else add(entry)

    def choices(self):
        return ", ".join(sorted(self))

    def get_entry(self, name):
        """The entry called ``name``, or a ValueError listing the choices."""
        if name not in self:
            raise ValueError(f"unknown {self.what} {name!r}; expected one of {self.choices()}")
        return self[name]

    def build(self, spec):
        """An instance from a spec such as {"type": "dense", "units": 10}."""
        spec = dict(spec)
        return self.get_entry(spec.pop("type"))(**spec)
