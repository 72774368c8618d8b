"""``python -m mailgate``."""

from mailgate.cli import main

main()
