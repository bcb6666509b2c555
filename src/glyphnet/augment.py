"""On-the-fly data augmentation (filled in by the augmentation work)."""


def check_config(section, problems):
    for key in section:
        problems.append(f"augment.{key}: unknown augmentation")
    return {}


def from_config(section):
    """A function (images, rng) -> images, or None when no augmentation is configured."""
    return None
