"""How much memory the machine has free, for estimates made before allocating."""
import os


def available():
    """Bytes of memory available to a new allocation (MemAvailable), or the machine's total
    where /proc/meminfo cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
