import sys

from facepad.cli import main

sys.exit(main())
