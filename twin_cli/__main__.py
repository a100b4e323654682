import sys

from twin_cli.main import main

sys.exit(main())
