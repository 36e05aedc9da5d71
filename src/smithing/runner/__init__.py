"""Expands studies into runs, trains them (batched where possible), stores the results."""
