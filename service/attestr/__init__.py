"""attestr"""
