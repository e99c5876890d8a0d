"""Files the user sends and gets back; `automation.files.tables` reads, queries and writes tables.

The table engine is pure (bytes in, bytes out, no database or chat code) so storage and chat
attachments can be built around it without it knowing about them.
"""
