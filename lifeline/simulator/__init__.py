"""The built-in Telnyx emulator, scripted callers, and the harness that runs them."""
