import sys

from analysis.render import main

sys.exit(main())
