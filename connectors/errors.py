"""Errors connectors raise, translated from their SDKs so nothing above sees `telegram.error`.

ConnectorError
├── ConnectorConfigError   a wrong token or endpoint: fix the setting named in the message
├── DeliveryError          one send failed; `retryable` and `retry_after` tell the outbox what to do
└── AttachmentError        a user's file could not be fetched; the message is for the user
"""


class ConnectorError(Exception):
    """Base class for channel failures."""


class ConnectorConfigError(ConnectorError):
    """The channel refused our credentials or endpoint."""


class DeliveryError(ConnectorError):
    """Sending one message failed."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class AttachmentError(ConnectorError):
    """Fetching an attachment failed (too large for the channel, gone, network); the message
    says why in words the user can act on ("send a link instead")."""
