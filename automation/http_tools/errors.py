"""Why an OpenAPI document, or one of its operations, did not become declarative HTTP tools.

    OpenApiError        the document cannot be imported at all (not OpenAPI 3, no paths, a broken
                        $ref, no usable base URL, a --only or --risk naming nothing); nothing is
                        written, and `problems` holds one line per thing to fix
    SkippedOperation    a deliberate signal: one operation cannot become a tool (a form body, an
                        external $ref, …); the import goes on and the message becomes a warning

Loading a tool file that fails validation is not here: `loader.load_http_tools` reports those as
lines naming the file and field, since a bad file must not stop the other files from loading.
"""

from __future__ import annotations


class OpenApiError(Exception):
    """The document cannot be imported; each line of `problems` says what to fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class SkippedOperation(Exception):
    """One operation cannot become a tool; the message says why, for the import's warnings."""
