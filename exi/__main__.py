import sys

from exi.cli.__main__ import main

sys.exit(main())
