"""Lip-sync engines: frames, face tracks and audio features in; frames out."""
