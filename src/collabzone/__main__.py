"""``python -m collabzone``: the same entry point as the ``collabzone`` command."""

from collabzone.cli import main

if __name__ == "__main__":
    main()
