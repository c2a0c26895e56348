"""Published files take the group and mode configured for their outbox, before the rename."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import pytest

from heygem_daemon.errors import HeygemError
from heygem_daemon.jobs.publish import Permissions, Staging, publish
from heygem_daemon.settings import PublishSettings


@pytest.mark.parametrize("mode, with_group, expected", [
    ("0640", True, 0o2750), ("0600", True, 0o2700), ("0664", False, 0o775), ("0644", False, 0o755),
])
def test_folders_get_x_where_the_mode_gives_r_and_setgid_with_a_group(mode, with_group, expected):
    """0640 → 2750: whoever may read a file may open its folder; setgid keeps the group for new files."""
    assert expected == Permissions(gid=100 if with_group else None, file_mode=int(mode, 8)).dir_mode


def test_an_unknown_group_is_refused_with_its_name():
    with pytest.raises(HeygemError) as err:
        Permissions.from_settings(PublishSettings(group="no-such-group-xyz"))
    assert "The publish group 'no-such-group-xyz' does not exist on this host." in str(err.value)


def test_the_job_appears_with_the_mode_already_set_and_links_untouched(tmp_path: Path):
    """Every file and folder of the staged job has the mode when the rename makes it visible;
    a symbolic link inside is not followed (its target keeps its own mode)."""
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours", encoding="utf-8")
    outside.chmod(0o604)
    staging = Staging(tmp_path / "outbox", "abc")
    staging.create()
    (staging.path / "out.mp4").write_bytes(b"video")
    (staging.path / "source").mkdir()
    (staging.path / "source" / "voice.wav").write_bytes(b"audio")
    (staging.path / "source" / "link").symlink_to(outside)
    staging.results.rmdir()

    group = grp.getgrgid(os.getgid())
    published = publish(staging, "job", permissions=Permissions.from_settings(
        PublishSettings(group=group.gr_name, mode="0640")))

    modes = {str(p.relative_to(published)): stat.S_IMODE(p.lstat().st_mode)
             for p in [published, *published.rglob("*")] if not p.is_symlink()}
    assert {".": 0o2750, "out.mp4": 0o640, "source": 0o2750, "source/voice.wav": 0o640} == modes
    assert 0o604 == stat.S_IMODE(outside.stat().st_mode)
