"""What a job's own steps raise, for the worker to read (outcomes.py)."""

from __future__ import annotations


class JobFailed(Exception):
    """A failure no retry can mend; the message is for the person who reads the company status.
    `outcome`: kept in the job's result (`company_deleted`), when the failure has a name."""

    def __init__(self, message: str, outcome: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class LeaseLost(Exception):
    """Another worker took the job over (this one was too slow to renew its lease)."""
