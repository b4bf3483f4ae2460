"""airtable"""
