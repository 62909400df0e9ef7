"""``python -m tritonlite serve ...`` (see :mod:`tritonlite.cli`)."""

import sys

from tritonlite.cli import main

if __name__ == "__main__":
    sys.exit(main())
