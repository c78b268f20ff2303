"""The collaborators call handling needs beyond the event and the unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from insight.base import ListeningEngine
from ivr.recordings import RecordingKeeper
from insight.sentiment import SentimentScorer
from transfer.executor import TransferExecutor
from transfer.rules import RuleSet


@dataclass(frozen=True)
class Services:
    """What the actions use: the listening engine, the transfer executor, the scorer, the rules."""

    engine: ListeningEngine
    transfers: TransferExecutor
    scorer: SentimentScorer
    rules: RuleSet
    recordings: RecordingKeeper | None = None  # keeps voicemail audio; None: URLs only
