"""Telephony providers: one module per provider with the same small interface, chosen by name.

What a provider does is in `lifeline.providers.base.Provider`; what stays shared (store, menu, rules,
transfer executor, listening engines, outputs) never imports a provider.
"""

from __future__ import annotations

from .base import Provider, ProviderCommands, WebhookRequest

__all__ = ["Provider", "ProviderCommands", "WebhookRequest"]
