"""Chat channels (Telegram, terminal, web later) that turn updates into `InboundMessage`s."""
