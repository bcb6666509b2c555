"""Validation of option tables against constructors, shared by configs and model files:
every problem is collected (as 'key: message') so a user sees them all at once."""
import inspect
import math


def _type_name(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _check_type(key, value, default, problems):
    """Values must have the default's type (an int is accepted where a float is expected)."""
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) == isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        if ok and not math.isfinite(value):
            problems.append(f"{key}: expected a finite number, got {value!r}")
            return False
    else:
        ok = isinstance(value, type(default))
    if not ok:
        problems.append(f"{key}: expected {_type_name(default)}, got {value!r}")
    return ok


def _check_object(key, registry, spec, problems, what):
    """Validate {"type": ..., **kwargs} against the constructor of registry[type]; returns the
    spec with every option spelled out (defaults included) when it is valid."""
    if not isinstance(spec, dict):
        problems.append(f"{key}: expected a table with a 'type' key, got {spec!r}")
        return spec
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in registry:
        problems.append(f"{key}.type: unknown {what} {kind!r}; expected one of "
                        f"{', '.join(sorted(registry))}")
        return spec
    params = inspect.signature(registry[kind].__init__).parameters
    allowed = [p for p in params if p != "self"]
    known, types_ok = {}, True
    for name, value in spec.items():
        if name == "type":
            continue
        if name not in allowed:
            expected = ", ".join(allowed) or "no options"
            problems.append(f"{key}.{name}: unknown option for {what} {kind!r} "
                            f"(expected {expected})")
            continue
        known[name] = value
        default = params[name].default
        if default is not inspect.Parameter.empty and default is not None and \
                not isinstance(default, tuple):
            types_ok &= _check_type(f"{key}.{name}", value, default, problems)
    missing = [p for p in allowed if params[p].default is inspect.Parameter.empty
               and p not in spec]
    for name in missing:
        problems.append(f"{key}.{name}: required for {what} {kind!r}")
    if types_ok and not missing:
        # Build it even next to unknown options, so bad values are reported in the same pass.
        try:
            obj = registry[kind](**known)
        except (ValueError, TypeError) as exc:
            problems.append(f"{key}: {exc}")
        else:
            if len(known) == len(spec) - 1:
                return {"type": kind, **obj.get_config()}
    return spec
