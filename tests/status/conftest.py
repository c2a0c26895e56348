"""Fixtures for the status page tests: headless Chromium."""

from tests.support.browser import browser  # noqa: F401 -- the fixture, for every test here
