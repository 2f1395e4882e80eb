import sys

from geomcheck.cli import main

sys.exit(main())
