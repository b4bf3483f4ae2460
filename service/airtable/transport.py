"""How requests reach Airtable: pyairtable's session with an adapter that reads each answer up
to MAX_ANSWER_BYTES (requests alone reads an answer of any size whole)."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

# A page of 100 records with the fields the service asks for, or a base's schema, is well under
# this: a larger answer is refused as it arrives rather than held in memory.
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class BoundedAdapter(HTTPAdapter):
    """requests' adapter, reading each answer itself up to MAX_ANSWER_BYTES: refused at once by
    its Content-Length, else when more has arrived (requests alone reads any size whole)."""

    def send(self, request: Any, stream: bool = False, **kwargs: Any) -> requests.Response:
        response = super().send(request, stream=True, **kwargs)
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > MAX_ANSWER_BYTES:
            response.close()
            raise AnswerTooLarge(f"{int(announced):,} bytes announced")
        content = bytearray()
        for chunk in response.iter_content(65_536):
            content += chunk
            if len(content) > MAX_ANSWER_BYTES:
                response.close()
                raise AnswerTooLarge(f"more than {MAX_ANSWER_BYTES:,} bytes sent")
        response._content = bytes(content)  # what requests would have read, read with a limit
        return response


class AnswerTooLarge(requests.RequestException):
    pass
