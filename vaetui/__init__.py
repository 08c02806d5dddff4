"""vaetui: train and explore variational autoencoders from a terminal."""

import time as _time

__version__ = "0.1.0"
STARTED_AT = _time.time()  # when this process began to run vaetui (see vaetui.control.asked_since)
