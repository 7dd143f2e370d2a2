"""The one exception the SDK raises for API and transport failures."""
from typing import Optional


class LatheError(Exception):
    """A request Lathe refused or could not answer.

    Attributes:
        code: the API's error code ("INVALID_ARGUMENT", "NOT_FOUND", …), or
            "UNAVAILABLE" when the server could not be reached.
        message: the server's message (or the transport's).
        field: the offending input field, when the server named one.
        http_status: the HTTP status (None when no answer came).
        request_id: the server's request id, for its logs.
    """

    def __init__(self, code: str, message: str, field: Optional[str] = None,
                 http_status: Optional[int] = None, request_id: Optional[str] = None):
        self.code = code
        self.message = message
        self.field = field or None
        self.http_status = http_status
        self.request_id = request_id or None
        super().__init__(str(self))

    def __str__(self) -> str:
        text = "{}: {}".format(self.code, self.message)
        if self.field and self.field not in self.message:
            text += " (field: {})".format(self.field)
        if self.http_status is not None:
            text += " [HTTP {}]".format(self.http_status)
        return text

    def __repr__(self) -> str:
        return "LatheError(code={!r}, message={!r}, field={!r}, http_status={!r})".format(
            self.code, self.message, self.field, self.http_status)
