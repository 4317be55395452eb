"""``python -m model_bundle.batch MODEL INPUT OUTPUT``: batch prediction over a file."""

import sys

from model_bundle.batch.cli import main

sys.exit(main())
