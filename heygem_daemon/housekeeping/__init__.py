"""Keeping the outbox and the caches from growing without bound.

``retention.py`` moves old outbox jobs to ``outbox/.trash`` and deletes them after a
grace period; ``cache.py`` keeps the caches under a size cap, least recently used
first; ``keeper.py`` runs both now and then on a thread of its own, so a slow share
never holds up the main loop.
"""
