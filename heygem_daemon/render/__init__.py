"""One output video, from its plan to its encoded file: the per-video render path.

``jobs/`` decides what to render and publishes it; this package renders one
(video, audio) pair: ``plan`` (probe, size, content digest), ``face_source``
(the cached face track, or tracking in the decode's own pass), ``avatar`` and
``mouths`` (the avatar's one-time self-analysis and mouth library),
``pipeline`` (bounded decode → faces → render → encode stages), ``moment``
(the poster's frame) and ``video`` (all of it for one output).
"""
