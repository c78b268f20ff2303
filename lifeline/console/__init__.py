"""The supervisor console: live calls fed by the feed (SSE), the history, and one call's page.

Server-rendered pages (Jinja autoescaping) and small scripts of our own, served under a strict
Content-Security-Policy; the JSON it shows live comes from the feed and the calls API.
"""
