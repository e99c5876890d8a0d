"""Chat channels (Telegram, terminal, web later) that turn channel updates into `InboundMessage`s."""
