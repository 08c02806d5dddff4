"""`python -m vaetui` is the `vaetui` command."""

import sys

from vaetui.cli import main

if __name__ == "__main__":
    sys.exit(main())
