"""Allow ``python -m jobaudit``."""

from jobaudit.cli import main

main()
