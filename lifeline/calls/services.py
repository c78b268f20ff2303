"""The collaborators call handling needs beyond the event and the unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from lifeline.insight.base import ListeningEngine
from lifeline.insight.understand import Understanding
from lifeline.ivr.recordings import RecordingKeeper
from lifeline.transfer.executor import TransferExecutor
from lifeline.transfer.rules import RuleSet


@dataclass(frozen=True)
class Services:
    """What the actions use: the listening engine, the transfer executor, the scorer, the rules."""

    engine: ListeningEngine
    transfers: TransferExecutor
    scorer: Understanding
    rules: RuleSet
    recordings: RecordingKeeper | None = None  # keeps voicemail audio; None: URLs only
