"""Stand-ins for Attestr and Airtable: real HTTP apps that keep the real services' rules.

They let `contact-sync demo`, the benchmarks and the tests run the whole flow on a machine with
no accounts and no network. They are never used unless a base URL points at them.
"""
