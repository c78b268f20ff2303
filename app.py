"""Entry point: `gunicorn app:app` or `flask --app app ...`.

The packages never import the simulator; this entry point adds its development commands
(`flask simulate`, `flask bench`, `flask listen-bench`) to the CLI. Under the `flask` command the
app's services are built only when a command runs (lifeline/startup.py), so `flask --help`
works without settings, and a settings problem is a few lines naming the fix, not a traceback.
"""

from lifeline.simulator.cli import DEV_COMMANDS
from lifeline.simulator.cli import register as register_simulator
from lifeline.startup import entry_app

if __name__ == "__main__":
    # Run as a script, this module would build the app and exit, serving nothing: say what serves it.
    raise SystemExit("app.py is not run directly: `make dev` serves Lifeline with the Telnyx emulator, "
                     "`flask --app app run` serves it alone, and `gunicorn app:app` serves it in production "
                     "(README.md)")

app = entry_app(register_simulator, dev_commands=DEV_COMMANDS)
