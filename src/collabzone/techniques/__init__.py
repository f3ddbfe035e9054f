"""Privacy techniques, one package or module each (see base.py for the interface)."""
