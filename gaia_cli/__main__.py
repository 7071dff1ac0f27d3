"""`python -m gaia_cli` (and `torchrun -m gaia_cli ...`)."""

from gaia_cli.cli.app import main

if __name__ == "__main__":
    main()
