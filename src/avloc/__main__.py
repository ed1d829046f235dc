import sys

from avloc.cli import main

sys.exit(main())
