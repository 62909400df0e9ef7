"""Protocol buffer schemas and their generated modules (see generate.py)."""
