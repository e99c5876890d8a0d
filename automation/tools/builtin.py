"""Registration of the built-in tools, through the same call a plug-in uses."""

from automation.tools.base import ToolRegistry
from automation.tools.clock import CurrentTime
from automation.tools.files import FileDownload, FileList, FileSend
from automation.tools.memory_tools import MemoryForget, MemorySave, MemorySearch
from automation.tools.notes import ListNotes, RememberNote
from automation.tools.plan import TaskPlan
from automation.tools.quiet import PauseNudges, ResumeNudges
from automation.tools.reminders import (
    CancelReminder,
    CreateReminder,
    ListReminders,
    UpdateReminder,
)
from automation.tools.table_tools import TableRead, TableWrite
from automation.tools.tool_search import ToolSearch
from automation.tools.web import WebRead


def register(registry: ToolRegistry) -> None:
    """Add Dadang's built-in tools to `registry`."""
    registry.register(CurrentTime())
    registry.register(RememberNote())
    registry.register(ListNotes())
    registry.register(MemorySearch())
    registry.register(MemorySave())
    registry.register(MemoryForget())
    registry.register(CreateReminder())
    registry.register(ListReminders())
    registry.register(UpdateReminder())
    registry.register(CancelReminder())
    registry.register(PauseNudges())
    registry.register(ResumeNudges())
    registry.register(WebRead())
    registry.register(FileList())
    registry.register(FileSend())
    registry.register(FileDownload())
    registry.register(TaskPlan())
    registry.register(TableRead())
    registry.register(TableWrite())
    registry.register(ToolSearch())
