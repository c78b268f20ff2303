"""The conversation, out: the live feed, transcripts, pause, summaries, webhooks and email out.

Everything here reads the store's `feed` table, which lifeline/calls/ writes in the same unit of work as
the change it describes; nothing out is fed from one process's memory.
"""
