import sys

from twin_cli.main import main

if __name__ == "__main__":  # not when a spawned process (the plotting process) imports it
    sys.exit(main())
