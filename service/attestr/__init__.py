"""Attestr: the client (`client.py`: request, answer, the error table as typed exceptions) and
the gate before every paid call (`gate.py`: one call per CIN, the shared pause and probe, the
daily cap). Never imports the Airtable wing."""
