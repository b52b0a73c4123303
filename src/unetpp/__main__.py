"""`python -m unetpp`: the same CLI as the `unetpp` command (with `src/` on PYTHONPATH, no install needed)."""

from unetpp.cli import main

main(prog_name="unetpp")
