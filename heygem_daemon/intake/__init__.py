"""Intake: notice job folders, decide when they are complete, claim them."""
