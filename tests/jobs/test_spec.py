"""job.toml model and job folder validation (heygem_daemon.jobs.spec)."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path
from typing import Callable

import pytest

from heygem_daemon.errors import JobValidationError, LimitExceededError, UnsafeInputError
from heygem_daemon.jobs.spec import JobPlan, OutputPair, load_job, validate_folder
from heygem_daemon.settings import LimitSettings, OutputSettings, Settings

ENGINES = ("builtin", "wav2lip")
MakeJob = Callable[..., Path]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox")


@pytest.fixture
def make_job(tmp_path: Path) -> MakeJob:
    """Factory: a job folder holding tiny fake files and, optionally, a job.toml."""

    def make(*files: str, toml: str | None = None, name: str = "job") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for file in files:
            (folder / file).write_bytes(b"fake")
        if toml is not None:
            (folder / "job.toml").write_text(toml, encoding="utf-8")
        return folder

    return make


def _load(folder: Path, settings: Settings) -> JobPlan:
    return load_job(folder, settings, known_engines=ENGINES)


def _error(folder: Path, settings: Settings) -> JobValidationError:
    with pytest.raises(JobValidationError) as err:
        _load(folder, settings)
    return err.value


# -- good folders -------------------------------------------------------------------


def test_folder_without_toml_pairs_one_audio_with_every_video(make_job: MakeJob, settings: Settings) -> None:
    """Without job.toml: the only audio × every video (sorted), default names and settings."""
    folder = make_job("voice.wav", "bob.mov", "alice.mp4", ".DS_Store", "notes.txt")
    plan = _load(folder, settings)
    assert ("voice.wav",) == plan.audios
    assert ("alice.mp4", "bob.mov") == plan.videos
    assert (
        OutputPair("alice.mp4", "voice.wav", "alice_voice.mp4", 0),
        OutputPair("bob.mov", "voice.wav", "bob_voice.mp4", 1),
    ) == plan.pairs
    assert ("job", "builtin", 0, None) == (plan.name, plan.engine, plan.priority, plan.transcript)
    assert settings.output == plan.output
    assert (False, False) == (plan.has_job_toml, plan.has_ready)


def test_toml_lists_audio_and_videos_video_major(make_job: MakeJob, settings: Settings) -> None:
    """A list of audio × a list of videos gives video-major pairs with rendered names."""
    toml = """
audio = ["en.wav", "de.mp3"]
videos = ["bob.mov", "alice.mp4"]
engine = "wav2lip"
transcript = "Hello everyone"
priority = 5
output_name = "{job}-{index:02d}-{video}-{audio}"

[output]
crf = 23
when_video_shorter = "loop"
"""
    folder = make_job("en.wav", "de.mp3", "alice.mp4", "bob.mov", "carol.mkv", "READY", toml=toml, name="promo")
    plan = _load(folder, settings)
    expected = [
        ("bob.mov", "en.wav", "promo-01-bob-en.mp4"),
        ("bob.mov", "de.mp3", "promo-02-bob-de.mp4"),
        ("alice.mp4", "en.wav", "promo-03-alice-en.mp4"),
        ("alice.mp4", "de.mp3", "promo-04-alice-de.mp4"),
    ]
    assert expected == [(p.video, p.audio, p.output) for p in plan.pairs]
    assert [0, 1, 2, 3] == [p.index for p in plan.pairs]
    assert ("wav2lip", "Hello everyone", 5) == (plan.engine, plan.transcript, plan.priority)
    assert OutputSettings(crf=23, when_video_shorter="loop") == plan.output
    assert (True, True) == (plan.has_job_toml, plan.has_ready)


def test_toml_without_videos_takes_all_videos(make_job: MakeJob, settings: Settings) -> None:
    """job.toml that only picks the audio still gets every video in the folder."""
    folder = make_job("a.wav", "b.wav", "y.webm", "x.avi", toml='audio = "b.wav"\n')
    plan = _load(folder, settings)
    assert (("b.wav",), ("x.avi", "y.webm")) == (plan.audios, plan.videos)


def test_output_name_gets_mp4_appended(make_job: MakeJob, settings: Settings) -> None:
    """An output_name without .mp4 gets it appended."""
    folder = make_job("voice.wav", "alice.mp4", toml='output_name = "{video} final"\n')
    assert "alice final.mp4" == _load(folder, settings).pairs[0].output


def test_validate_folder_returns_plan(make_job: MakeJob, settings: Settings) -> None:
    """validate_folder (what the CLI's validate runs) returns the same plan as load_job."""
    folder = make_job("voice.wav", "alice.mp4")
    assert _load(folder, settings) == validate_folder(folder, settings, ENGINES)


def test_name_override_feeds_job_placeholder(make_job: MakeJob, settings: Settings) -> None:
    """A claimed (renamed) folder keeps its job name when the caller passes it."""
    folder = make_job("voice.wav", "alice.mp4", toml='output_name = "{job}_{video}"\n', name="promo.host.123")
    plan = load_job(folder, settings, known_engines=ENGINES, name="promo")
    assert ("promo", "promo_alice.mp4") == (plan.name, plan.pairs[0].output)


# -- Unicode ------------------------------------------------------------------------


def test_nfc_name_in_toml_matches_nfd_file_on_disk(make_job: MakeJob, settings: Settings) -> None:
    """job.toml says 'José.wav' (NFC), the disk holds NFD (macOS copy): matched, disk name kept."""
    nfd = unicodedata.normalize("NFD", "José.wav")
    folder = make_job(nfd, "Zoë.mp4", toml='audio = "José.wav"\n')
    plan = _load(folder, settings)
    assert (nfd,) == plan.audios
    assert unicodedata.normalize("NFC", "Zoë_José.mp4") == plan.pairs[0].output


def test_nfd_name_in_toml_matches_nfc_file_on_disk(make_job: MakeJob, settings: Settings) -> None:
    """job.toml says the NFD form and the disk holds NFC: matched, disk name kept."""
    nfc = unicodedata.normalize("NFC", "Zoë.mp4")
    nfd = unicodedata.normalize("NFD", "Zoë.mp4")
    folder = make_job("voice.wav", nfc, toml=f'videos = ["{nfd}"]\n')
    assert (nfc,) == _load(folder, settings).videos


def test_output_names_are_nfc(make_job: MakeJob, settings: Settings) -> None:
    """Files stored in NFD give output names in NFC."""
    folder = make_job(unicodedata.normalize("NFD", "Ångström.wav"), unicodedata.normalize("NFD", "Zoë.mp4"))
    output = _load(folder, settings).pairs[0].output
    assert unicodedata.normalize("NFC", "Zoë_Ångström.mp4") == output
    assert unicodedata.is_normalized("NFC", output)


# -- job.toml errors ----------------------------------------------------------------


def test_unknown_key_suggests_closest(make_job: MakeJob, settings: Settings) -> None:
    """A misspelt key is named, with the closest allowed key and the full list."""
    err = _error(make_job("voice.wav", "a.mp4", toml='vidoes = ["a.mp4"]\n'), settings)
    assert "job.toml: unknown key 'vidoes'. Did you mean 'videos'?" in str(err)
    assert "Allowed keys: audio, videos, engine, transcript, priority, output_name, output, notify." in str(err)
    assert "vidoes" == err.key


def test_unknown_output_key_suggests_closest(make_job: MakeJob, settings: Settings) -> None:
    """A misspelt key inside [output] is named with its table and a suggestion."""
    err = _error(make_job("voice.wav", "a.mp4", toml="[output]\ncrff = 20\n"), settings)
    assert "unknown key 'output.crff'. Did you mean 'crf'?" in str(err)


def test_priority_must_be_whole_number(make_job: MakeJob, settings: Settings) -> None:
    """priority = "high" is refused naming the key and what it must be."""
    err = _error(make_job("voice.wav", "a.mp4", toml='priority = "high"\n'), settings)
    assert "job.toml: 'priority' must be a whole number, got 'high'." == str(err)


def test_priority_is_bounded(make_job: MakeJob, settings: Settings) -> None:
    """A priority far outside the allowed range is refused with the bound."""
    err = _error(make_job("voice.wav", "a.mp4", toml="priority = 99999\n"), settings)
    assert "job.toml: 'priority' must be at most 1000, got 99999." == str(err)


def test_audio_of_wrong_type(make_job: MakeJob, settings: Settings) -> None:
    """audio = 5 is refused with an example of both accepted forms."""
    err = _error(make_job("voice.wav", "a.mp4", toml="audio = 5\n"), settings)
    assert str(err).startswith("job.toml: 'audio' must be a file name in quotes")
    assert "got 5." in str(err)


def test_output_value_out_of_range(make_job: MakeJob, settings: Settings) -> None:
    """Output settings are checked against the daemon's own ranges and choices."""
    err = _error(make_job("voice.wav", "a.mp4", toml='[output]\ncrf = 99\npreset = "turbo"\n'), settings)
    assert "job.toml: 'output.crf' must be at most 51, got 99." in str(err)
    assert "'output.preset' must be one of" in str(err)


def test_unknown_engine_lists_known(make_job: MakeJob, settings: Settings) -> None:
    """An unknown engine is refused with the list of known ones."""
    err = _error(make_job("voice.wav", "a.mp4", toml='engine = "foo"\n'), settings)
    assert "job.toml: engine 'foo' is unknown; use one of builtin, wav2lip." == str(err)


def test_transcript_too_long(make_job: MakeJob, settings: Settings) -> None:
    """A transcript over 20,000 characters is refused."""
    err = _error(make_job("voice.wav", "a.mp4", toml=f'transcript = "{"x" * 20001}"\n'), settings)
    assert "'transcript' is too long (20,001 characters); the limit is 20,000." in str(err)


def test_toml_syntax_error_gives_line(make_job: MakeJob, settings: Settings) -> None:
    """A TOML syntax error names the line and column."""
    err = _error(make_job("voice.wav", "a.mp4", toml='priority = 1\naudio = voice.wav\n'), settings)
    assert str(err).startswith("job.toml is not valid TOML:")
    assert "line 2, column 9" in str(err)


def test_toml_invalid_utf8_gives_line(make_job: MakeJob, settings: Settings) -> None:
    """A job.toml that is not UTF-8 is refused with the line and column."""
    folder = make_job("voice.wav", "a.mp4")
    (folder / "job.toml").write_bytes(b'priority = 1\ntranscript = "caf\xe9"\n')
    err = _error(folder, settings)
    assert "job.toml is not valid UTF-8 text (line 2, column 18)." in str(err)


def test_toml_with_bom_is_accepted(make_job: MakeJob, settings: Settings) -> None:
    """A UTF-8 byte order mark (Windows Notepad) does not break job.toml."""
    folder = make_job("voice.wav", "a.mp4")
    (folder / "job.toml").write_bytes(b"\xef\xbb\xbfpriority = 3\n")
    assert 3 == _load(folder, settings).priority


def test_deeply_nested_toml_is_refused(make_job: MakeJob, settings: Settings) -> None:
    """Pathological nesting ends in a validation error, not a crash."""
    err = _error(make_job("voice.wav", "a.mp4", toml="a = " + "[" * 100_000), settings)
    assert "nested too deeply" in str(err)


def test_huge_toml_refused_without_reading(make_job: MakeJob, settings: Settings) -> None:
    """A 50 MB job.toml is refused from its size, quickly."""
    folder = make_job("voice.wav", "a.mp4")
    with open(folder / "job.toml", "wb") as fh:
        fh.write(b"# " + b"x" * (50 * 1024 * 1024 - 3) + b"\n")
    started = time.monotonic()
    with pytest.raises(LimitExceededError) as err:
        _load(folder, settings)
    assert time.monotonic() - started < 0.5
    assert "limits.max_job_toml_bytes" == err.value.key
    assert "job.toml is 52,428,800 bytes; the limit is 262,144 bytes." in str(err.value)


def test_toml_symlink_is_refused(make_job: MakeJob, settings: Settings) -> None:
    """A job.toml that is a symlink to a file outside is refused."""
    folder = make_job("voice.wav", "a.mp4")
    (folder / "job.toml").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeInputError, match="'job.toml' is a symbolic link"):
        _load(folder, settings)


def test_misnamed_toml_is_refused(make_job: MakeJob, settings: Settings) -> None:
    """'job.toml.txt' (Windows hiding extensions) is refused, not silently ignored."""
    err = _error(make_job("voice.wav", "a.mp4", "job.toml.txt"), settings)
    assert "must be named exactly 'job.toml'" in str(err)


# -- names that leave the folder or do not exist ------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("../x.wav", "is a path, not a file name inside the job folder"),
        ("/etc/passwd", "is a path, not a file name inside the job folder"),
        ("sub/x.wav", "is a path, not a file name inside the job folder"),
        ("C:\\\\voice.wav", "is a path, not a file name inside the job folder"),
        ("..", "is a path, not a file name inside the job folder"),
        ("x\\u0000.wav", "contains a NUL character"),
        (".hidden.wav", "is a hidden file"),
        ("", "is empty"),
    ],
)
def test_audio_names_must_stay_inside_folder(
    make_job: MakeJob, settings: Settings, value: str, problem: str
) -> None:
    """Names in job.toml that are paths, hidden, empty or hold NUL are refused, naming the key."""
    (settings.inbox).mkdir()
    (settings.inbox / "x.wav").write_bytes(b"outside")
    err = _error(make_job("voice.wav", "a.mp4", toml=f'audio = "{value}"\n'), settings)
    assert str(err).startswith("job.toml: audio '")
    assert problem in str(err)
    assert "audio" == err.key


def test_video_path_in_list_is_refused(make_job: MakeJob, settings: Settings) -> None:
    """A path inside the videos list is refused naming 'videos'."""
    err = _error(make_job("voice.wav", "a.mp4", toml='videos = ["a.mp4", "../b.mp4"]\n'), settings)
    assert "job.toml: videos '../b.mp4' is a path" in str(err)
    assert "videos" == err.key


def test_missing_audio_file(make_job: MakeJob, settings: Settings) -> None:
    """A named file that is not there is reported in plain words, with a close match."""
    err = _error(make_job("Voice.wav", "a.mp4", toml='audio = "voice.wav"\n'), settings)
    assert (
        "job.toml names audio 'voice.wav' but there is no such file in the job folder. Did you mean 'Voice.wav'?"
        == str(err)
    )


def test_named_file_of_wrong_kind(make_job: MakeJob, settings: Settings) -> None:
    """Naming a video as the audio is refused."""
    err = _error(make_job("voice.wav", "a.mp4", toml='audio = "a.mp4"\n'), settings)
    assert "job.toml names audio 'a.mp4' but that is not an audio file" in str(err)


def test_file_listed_twice(make_job: MakeJob, settings: Settings) -> None:
    """The same video listed twice is refused."""
    err = _error(make_job("voice.wav", "a.mp4", toml='videos = ["a.mp4", "a.mp4"]\n'), settings)
    assert "names 'a.mp4' twice" in str(err)


def test_empty_videos_list(make_job: MakeJob, settings: Settings) -> None:
    """videos = [] is refused."""
    err = _error(make_job("voice.wav", "a.mp4", toml="videos = []\n"), settings)
    assert "'videos' is an empty list" in str(err)


# -- ambiguous or incomplete folders ------------------------------------------------


def test_two_audio_without_toml_is_ambiguous(make_job: MakeJob, settings: Settings) -> None:
    """Two audio files and no job.toml: the error lists them and says what to add."""
    err = _error(make_job("a.wav", "b.mp3", "x.mp4"), settings)
    assert (
        'Found 2 audio files (a.wav, b.mp3) and no job.toml: add a job.toml with audio = "a.wav" '
        "(or a list, to make a video for each audio)." == str(err)
    )


def test_two_audio_and_toml_without_audio_key(make_job: MakeJob, settings: Settings) -> None:
    """Two audio files and a job.toml that does not pick one is ambiguous too."""
    err = _error(make_job("a.wav", "b.mp3", "x.mp4", toml="priority = 1\n"), settings)
    assert "job.toml does not say which to use: add to job.toml audio = \"a.wav\"" in str(err)


def test_no_audio(make_job: MakeJob, settings: Settings) -> None:
    """A folder without audio is refused."""
    err = _error(make_job("x.mp4"), settings)
    assert "The job folder holds no audio file" in str(err)


def test_no_videos(make_job: MakeJob, settings: Settings) -> None:
    """A folder without videos is refused."""
    err = _error(make_job("voice.wav", "notes.txt"), settings)
    assert "The job folder holds no video file" in str(err)


def test_partial_copy_is_refused(make_job: MakeJob, settings: Settings) -> None:
    """A folder still holding a partial download is not a valid job yet."""
    err = _error(make_job("voice.wav", "a.mp4", "b.mp4.crdownload"), settings)
    assert "'b.mp4.crdownload', which look like copies in progress" in str(err)


def test_unsafe_file_fails_the_job(make_job: MakeJob, settings: Settings) -> None:
    """A symlinked video fails validation of the whole folder."""
    folder = make_job("voice.wav")
    (folder / "a.mp4").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeInputError, match="'a.mp4' is a symbolic link"):
        _load(folder, settings)


def test_too_many_pairs(make_job: MakeJob, tmp_path: Path) -> None:
    """More outputs than limits.max_pairs_per_job is a limit error."""
    settings = Settings(inbox=tmp_path / "in", limits=LimitSettings(max_pairs_per_job=3))
    folder = make_job("a.wav", "b.wav", "x.mp4", "y.mp4", toml='audio = ["a.wav", "b.wav"]\n')
    with pytest.raises(LimitExceededError) as err:
        _load(folder, settings)
    assert "limits.max_pairs_per_job" == err.value.key
    assert "asks for 4 outputs" in str(err.value)


def test_file_too_big(make_job: MakeJob, tmp_path: Path) -> None:
    """A media file over limits.max_file_bytes is a limit error."""
    settings = Settings(inbox=tmp_path / "in", limits=LimitSettings(max_file_bytes=3))
    err = _error(make_job("voice.wav", "a.mp4"), settings)
    assert isinstance(err, LimitExceededError)
    assert "'voice.wav' is 4 bytes; the limit is 3 bytes." in str(err)


# -- output_name --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{video}/x", "contains a folder separator"),
        ("..\\\\{video}", "contains a folder separator"),
        ("a\\u0000{video}", "contains a NUL character"),
        ("a\\u0007{video}", "contains a control character"),
        ("CON", "reserved by Windows"),
        ("con.mp4", "reserved by Windows"),
        ("Lpt1.{video}", "reserved by Windows"),
        ("x.", "ends in a dot or a space"),
        ("{video} ", "ends in a dot or a space"),
        (".{video}", "starts with a dot"),
        ("..", "starts with a dot"),
        ("é" * 100 + "{video}", "is longer than 200 bytes"),
    ],
)
def test_unsafe_output_names_refused(make_job: MakeJob, settings: Settings, template: str, problem: str) -> None:
    """Output names that are not one safe file name are refused, naming output_name."""
    err = _error(make_job("voice.wav", "a.mp4", toml=f'output_name = "{template}"\n'), settings)
    assert str(err).startswith("job.toml: output_name '")
    assert problem in str(err)
    assert "output_name" == err.key


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{video.__class__}", "uses {video.__class__}"),
        ("{video[0]}", "uses {video[0]}"),
        ("{0}", "uses {0}"),
        ("{}", "uses {}"),
        ("{name}", "uses {name}"),
        ("{video!r}", "uses {video!r}"),
        ("{index:99999999}", "formats {index:99999999}"),
        ("{video:{audio}}", "formats {video:{audio}}"),
        ("{video", "unbalanced braces"),
    ],
)
def test_output_name_placeholders_are_restricted(
    make_job: MakeJob, settings: Settings, template: str, problem: str
) -> None:
    """Only {job} {video} {audio} {index} are allowed: no attribute, item or format tricks."""
    err = _error(make_job("voice.wav", "a.mp4", toml=f'output_name = "{template}"\n'), settings)
    assert problem in str(err)
    assert "output_name" == err.key


def test_duplicate_output_names_suggest_index(make_job: MakeJob, settings: Settings) -> None:
    """Two pairs with the same output name are refused with a hint to add {index}."""
    err = _error(make_job("en.wav", "de.wav", "a.mp4", toml='audio = ["en.wav", "de.wav"]\noutput_name = "{video}"\n'), settings)
    assert "gives the same file name 'a.mp4' for two outputs (a.mp4 + en.wav, and a.mp4 + de.wav)" in str(err)
    assert "{index}" in str(err)


def test_duplicate_output_names_ignore_case(make_job: MakeJob, settings: Settings) -> None:
    """Names differing only in case collide on Windows and macOS shares, so they are refused."""
    err = _error(make_job("voice.wav", "Alice.mp4", "alice.mov", toml='output_name = "{video}"\n'), settings)
    assert "gives the same file name" in str(err)


# -- every problem at once ---------------------------------------------------------


def test_a_wrong_type_does_not_hide_a_wrong_choice(make_job: MakeJob, settings: Settings) -> None:
    """priority = "high" and when_video_shorter = "bounce": both named in one error."""
    toml = 'priority = "high"\n[output]\nwhen_video_shorter = "bounce"\ncrf = "20"\n'
    err = _error(make_job("voice.wav", "a.mp4", toml=toml), settings)
    lines = str(err).splitlines()
    assert 3 == len(lines), lines
    assert any("'priority' must be a whole number" in line for line in lines)
    assert any("'output.crf' must be a whole number" in line for line in lines)
    assert any("output.when_video_shorter" in line and "'bounce'" in line for line in lines)


def test_every_missing_file_is_named(make_job: MakeJob, settings: Settings) -> None:
    """Two missing videos and a missing audio: three lines, one per file."""
    toml = 'audio = "speech.wav"\nvideos = ["a.mp4", "b.mp4", "c.mp4"]\n'
    err = _error(make_job("voice.wav", "a.mp4", toml=toml), settings)
    lines = str(err).splitlines()
    assert ["speech.wav", "b.mp4", "c.mp4"] == [line.split("'")[1] for line in lines]
    assert 3 == len(err.problems)


def test_a_wrong_key_type_and_an_unknown_engine_are_both_named(make_job: MakeJob, settings: Settings) -> None:
    """A broken key skips only the checks that need it: the engine is still checked."""
    toml = 'videos = "a.mp4"\nengine = "wav3lip"\n'
    err = _error(make_job("voice.wav", "a.mp4", toml=toml), settings)
    assert ["videos", "engine"] == [p.key for p in err.problems]


def test_one_problem_is_raised_as_itself(make_job: MakeJob, settings: Settings) -> None:
    """A single problem keeps its exact message and key (no list formatting)."""
    err = _error(make_job("voice.wav", "a.mp4", toml='engine = "wav3lip"\n'), settings)
    assert "job.toml: engine 'wav3lip' is unknown; use one of builtin, wav2lip." == str(err)
    assert [err] == err.problems
