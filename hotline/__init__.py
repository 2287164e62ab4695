"""The composition root: wires the domains and edges into the running system.

The engine, ``serve``, the CLI, the doctor, the demo set-up and the list of models live here;
nothing below imports this package.
"""
