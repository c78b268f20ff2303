"""Entry point: `gunicorn app:app` or `flask --app app ...`.

The packages never import the simulator; this entry point adds its development commands
(`flask simulate`, `flask bench`, `flask listen-bench`) to the CLI.
"""

from lifeline import create_app
from simulator.cli import register as register_simulator

app = create_app()
register_simulator(app)
