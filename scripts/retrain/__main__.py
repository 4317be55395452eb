import sys

from scripts.retrain.cli import main

sys.exit(main())
