"""The IVR's foundation: settings, errors, events, the menu, the call store, Telnyx commands.

Nothing here imports another Lifeline package; the app is wired in `lifeline.factory`.
"""
