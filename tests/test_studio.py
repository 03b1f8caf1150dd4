"""`sfxgan studio`: what the page does (through `Studio`, no browser), the command's errors, and
the real page driven in headless Chromium.

The browser test uses Debian's `chromium` (installed by .ci/run) through Playwright, so nothing
is downloaded. Outside CI a machine without Chromium skips it; in CI (CI=true) it fails instead,
so a missing browser can never pass as green.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sfxgan.apps.studio import CSS, MAX_CLIPS, Studio, build_page
from sfxgan.apps.vary import DEFAULT_SPREAD, log_spectral_distance, variations
from sfxgan.errors import SfxganError
from sfxgan.generate import Sampler
from tests.helpers import assert_one_line_error, free_port, sfxgan, tone, write

REPO = Path(__file__).resolve().parents[1]
# where the browser test leaves its screenshot (and the ZIP it downloaded) for people to look at
TEST_OUTPUT = Path(os.environ.get("SFXGAN_TEST_OUTPUT", REPO / "build" / "test-output"))
CHROMIUM = os.environ.get("SFXGAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# a sound is fitted with fewer starts and steps than `sfxgan vary`'s (a tenth of the work): the
# tests check what the studio does with a fit, apps/vary.py's own defaults how near it comes
FAST_FIT = {"starts": 5, "latent_steps": 25, "offset_steps": 15}


@pytest.fixture(scope="module")
def studio(tiny_run, tmp_path_factory) -> Studio:
    studio = Studio(Sampler.from_run(tiny_run, device="cpu"), tmp_path_factory.mktemp("studio"))
    studio.fitting = dict(FAST_FIT)
    return studio


@pytest.fixture(scope="module")
def from_sound(studio, demo_dir):
    """A take of 4 clips around a demo rain clip, in the class the fit finds."""
    return studio.start_from_sound(demo_dir / "rain" / "rain_000.wav", seed=0, count=4)


def read_wavs(paths) -> np.ndarray:
    clips = []
    for path in paths:
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 16000 and sf.info(path).subtype == "PCM_16"
        clips.append(audio)
    return np.stack(clips)


# --------------------------------------------------------------------------------------------
# what the page does
# --------------------------------------------------------------------------------------------


def test_a_take_is_what_generate_writes_for_the_same_seed(studio):
    take = studio.new_take("rain", count=4, seed=3)
    rendered = studio.render(take, studio.voice("rain"))
    assert len(rendered.wavs) == len(rendered.pictures) == 4
    expected = studio.sampler.generate("rain", n=4, seed=3)
    # the same clips, up to the 16-bit quantisation of the WAV files
    assert np.abs(read_wavs(rendered.wavs) - expected).max() < 2 / 32768
    assert [p.name for p in rendered.wavs] == [f"rain_s3_{i}.wav" for i in range(1, 5)]
    picture = rendered.pictures[0]
    assert picture.dtype == np.uint8 and picture.shape == (128, 256, 3)  # frequency up, 2:1
    with zipfile.ZipFile(rendered.zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(p.name for p in rendered.wavs)


def test_the_files_of_a_finished_take_are_what_generate_would_deliver(studio, tmp_path):
    """48 kHz at -16 LUFS on the page: the WAVs played and downloaded are generate's
    `--rate 48000 --loudness -16` takes of the same seed, and the ZIP holds them."""
    from sfxgan.apps.takes import generate_to_folder

    take = studio.new_take("rain", count=2, seed=3)
    finish = studio.finish(48_000, -16)
    assert finish == studio.finish("48000", "-16")  # as the page's boxes may send them
    rendered = studio.render(take, studio.voice("rain"), finish)
    assert rendered.finish == finish and rendered.quieter in (0, 1, 2)
    generate_to_folder(studio.sampler, tmp_path, 2, ["rain"], 3, finish=finish)
    for i, wav in enumerate(rendered.wavs):
        info = sf.info(wav)
        assert (info.samplerate, info.subtype) == (48_000, "PCM_16")
        # the same sound at the same level, up to the page's generator call (as above)
        page = sf.read(wav, dtype="float32")[0]
        written = sf.read(tmp_path / "rain" / f"rain_{i}.wav", dtype="float32")[0]
        assert page.shape == written.shape == (3 * 8192,)
        assert np.abs(page - written).max() < 1e-3
    with zipfile.ZipFile(rendered.zip_path) as archive:
        assert archive.read(rendered.wavs[0].name) == rendered.wavs[0].read_bytes()
    assert studio.finish(0, None).is_default and studio.finish(16_000, "").is_default


def test_variation_scales_the_latents_and_zero_gives_one_central_sound(studio):
    take = studio.new_take("engine", count=3, seed=0)
    central = studio.log_specs(take, studio.voice("engine", variation=0.0))
    assert torch.allclose(central[0], central[1], atol=1e-5)
    assert torch.allclose(central[0], central[2], atol=1e-5)
    tame = studio.log_specs(take, studio.voice("engine", variation=0.5))
    wild = studio.log_specs(take, studio.voice("engine", variation=1.5))
    spread = [float(s.std(dim=0).mean()) for s in (central, tame, wild)]
    assert spread[0] < 1e-5 < spread[1] < spread[2]
    assert studio.voice("engine", variation=0.5).stem == "engine_v50"


def test_blending_moves_from_one_class_to_the_other(studio):
    take = studio.new_take("birds", count=2, seed=0)
    birds = studio.log_specs(take, studio.voice("birds"))
    rain = studio.log_specs(take, studio.voice("rain"))
    assert not torch.allclose(birds, rain, atol=1e-3)
    assert torch.equal(studio.log_specs(take, studio.voice("birds", "rain", 0.0)), birds)
    all_rain = studio.log_specs(take, studio.voice("birds", "rain", 1.0))
    assert torch.allclose(all_rain, rain, atol=1e-5)
    half = studio.log_specs(take, studio.voice("birds", "rain", 0.5))
    assert not torch.allclose(half, birds, atol=1e-3) and not torch.allclose(half, rain, atol=1e-3)
    assert studio.voice("birds", "rain", 0.4).stem == "birds+rain40"
    assert studio.voice("birds", "(none)", 0.4).blend_with is None


def test_regenerating_one_clip_keeps_the_others_and_is_repeatable(studio):
    take = studio.new_take("footsteps", count=4, seed=0)
    again = studio.reroll(take, 2)
    assert torch.equal(again.latents[[0, 2, 3]], take.latents[[0, 2, 3]])
    assert not torch.equal(again.latents[1], take.latents[1])
    assert again.names[1] == "s0_2r1" and again.rerolls == (0, 1, 0, 0)
    assert torch.equal(studio.reroll(take, 2).latents, again.latents)  # the same first reroll
    assert not torch.equal(studio.reroll(again, 2).latents[1], again.latents[1])  # a second


def test_morph_runs_from_one_clip_to_another(studio):
    take = studio.new_take("gunshots", count=4, seed=0)
    morph = studio.morph(take, 1, 4, steps=5)
    assert morph.latents.shape == (5, take.latents.shape[1])
    assert torch.allclose(morph.latents[0], take.latents[0], atol=1e-5)
    assert torch.allclose(morph.latents[-1], take.latents[3], atol=1e-5)
    # on the arc, not the chord: the latents keep a typical length
    lengths = morph.latents.norm(dim=1)
    assert lengths.min() > 0.9 * min(take.latents[0].norm(), take.latents[3].norm())
    rendered = studio.render(morph, studio.voice("gunshots"))
    assert [p.name for p in rendered.wavs][0] == "gunshots_s0_m1-4_1.wav"


@pytest.mark.parametrize(
    "request_, message",
    [
        (lambda s: s.voice("thunder"), "unknown class 'thunder'; this model knows: birds"),
        (lambda s: s.voice("rain", "thunder", 0.5), "unknown class 'thunder'"),
        (lambda s: s.voice("rain", variation=3), "variation must be from 0 to 2, got 3"),
        (lambda s: s.voice("rain", "birds", blend="lots"), "blend must be a number"),
        (lambda s: s.new_take("rain", 0, 0), "number of variations must be a whole number"),
        (lambda s: s.new_take("rain", MAX_CLIPS + 1, 0), f"from 1 to {MAX_CLIPS}, got 17"),
        (lambda s: s.new_take("rain", 2.5, 0), "got 2.5"),
        (lambda s: s.new_take("rain", 4, None), "seed must be a whole number"),
        (lambda s: s.morph(s.new_take("rain", 4, 0), 1, 9, 5), "last clip must be"),
        (lambda s: s.reroll(s.new_take("rain", 4, 0), 5), "clip must be a whole number from 1"),
        (lambda s: s.finish(100), "rate must be a whole number from 8000 to 192000, got 100"),
        (lambda s: s.finish(0, 5), "loudness must be from -60 to 0, got 5"),
        (lambda s: s.finish(0, "loud"), "loudness must be a number from -60 to 0"),
    ],
)
def test_bad_requests_are_refused_with_a_message(studio, request_, message):
    with pytest.raises(SfxganError) as caught:
        request_(studio)
    assert message in str(caught.value)


# --------------------------------------------------------------------------------------------
# starting from a sound
# --------------------------------------------------------------------------------------------


def test_a_take_from_a_sound_lies_nearer_it_than_takes_of_its_class(studio, from_sound):
    fit, sampler = from_sound.fit, studio.sampler
    assert fit.class_name in studio.classes and from_sound.source.name == "rain_000"
    z = sampler.latents(fit.class_name, 32, 1)
    labels = torch.full((32,), sampler.label(fit.class_name))
    random = log_spectral_distance(sampler.log_spec(z, labels), fit.target)
    assert fit.distance_db < float(random.median()), (fit.distance_db, random)
    # clip i's free latent is take i - 1 of `sfxgan generate` for the class found and the seed
    assert torch.equal(from_sound.latents, sampler.latents(fit.class_name, 4, 0))
    assert from_sound.names == tuple(f"from-rain_000_s0_{i}" for i in range(1, 5))


def test_spread_runs_from_the_fitted_take_to_generates_takes(studio, from_sound):
    fit = from_sound.fit
    fitted = studio.log_specs(from_sound, studio.voice(fit.class_name, spread=0))
    for clip in fitted:
        assert torch.allclose(clip, fit.log_spec, atol=1e-5)
    free = studio.log_specs(from_sound, studio.voice(fit.class_name, spread=1))
    expected = studio.sampler.generate(fit.class_name, n=4, seed=0, return_spec=True)[1]
    assert np.abs(free.numpy() - expected).max() < 1e-4
    # between the two: `sfxgan vary --spread`'s takes, nearer the fit than free takes are
    voice = studio.voice(fit.class_name)
    assert voice.spread == DEFAULT_SPREAD
    between = studio.log_specs(from_sound, voice)
    assert torch.allclose(between, variations(studio.sampler, fit, range(4), DEFAULT_SPREAD, 0))
    distance = [float(log_spectral_distance(s, fit.target).mean()) for s in (between, free)]
    assert distance[0] < distance[1]


def test_regenerating_a_clip_from_a_sound_keeps_the_fit_and_the_others(studio, from_sound):
    again = studio.reroll(from_sound, 3)
    assert again.fit is from_sound.fit and again.source is from_sound.source
    assert torch.equal(again.latents[[0, 1, 3]], from_sound.latents[[0, 1, 3]])
    assert not torch.equal(again.latents[2], from_sound.latents[2])
    assert again.names[2] == "from-rain_000_s0_3r1" and again.rerolls == (0, 0, 1, 0)
    voice = studio.voice(from_sound.fit.class_name, spread=0.5)
    before, after = studio.log_specs(from_sound, voice), studio.log_specs(again, voice)
    assert torch.equal(before[[0, 1, 3]], after[[0, 1, 3]])
    assert not torch.allclose(before[2], after[2], atol=1e-3)
    # at spread 0 every clip is still the fitted take
    assert torch.allclose(
        studio.log_specs(again, studio.voice(voice.class_name, spread=0))[2],
        from_sound.fit.log_spec,
        atol=1e-5,
    )


def test_blend_variation_morph_and_finish_work_on_a_take_from_a_sound(studio, from_sound):
    found = from_sound.fit.class_name
    other = next(c for c in studio.classes if c != found)
    alone = studio.log_specs(from_sound, studio.voice(found))
    assert torch.equal(studio.log_specs(from_sound, studio.voice(found, other, 0.0)), alone)
    blended = studio.log_specs(from_sound, studio.voice(found, other, 0.5))
    assert not torch.allclose(blended, alone, atol=1e-3)
    tame = studio.log_specs(from_sound, studio.voice(found, variation=0.5))
    assert not torch.allclose(tame, alone, atol=1e-3)

    morph = studio.morph(from_sound, 1, 4, steps=3)
    assert morph.fit is from_sound.fit and morph.names[0] == "from-rain_000_s0_m1-4_1"
    ends = studio.log_specs(morph, studio.voice(found))
    assert torch.allclose(ends[0], alone[0], atol=1e-5)
    assert torch.allclose(ends[-1], alone[3], atol=1e-5)

    voice = studio.voice(found, other, 0.4, spread=0.5)
    rendered = studio.render(from_sound, voice, studio.finish(48_000, -16))
    stem = f"{found}+{other}40_sp50"
    assert [p.name for p in rendered.wavs] == [
        f"{stem}_from-rain_000_s0_{i}.wav" for i in range(1, 5)
    ]
    assert rendered.zip_path.name == f"{stem}_from-rain_000_s0.zip"
    for wav in rendered.wavs:
        info = sf.info(wav)
        assert (info.samplerate, info.subtype, info.frames) == (48_000, "PCM_16", 3 * 8192)
    with zipfile.ZipFile(rendered.zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(p.name for p in rendered.wavs)


def test_the_sound_beside_its_fitted_take(studio, from_sound, demo_dir):
    beside = studio.beside(from_sound)
    fit = from_sound.fit
    assert beside.original.name == "rain_000.wav"
    assert beside.fitted.name == f"{fit.class_name}_from-rain_000_s0_fit.wav"
    original, fitted = read_wavs([beside.original, beside.fitted])
    # the sound as the run sees it (its first 0.512 s at 16 kHz), peak-normalised
    decoded = sf.read(demo_dir / "rain" / "rain_000.wav", dtype="float32")[0][:8192]
    assert np.abs(original - decoded / np.abs(decoded).max()).max() < 2e-4
    assert 0.99 < np.abs(fitted).max() <= 1.0
    assert beside.original_picture.shape == beside.fitted_picture.shape == (128, 256, 3)
    assert beside.class_name == fit.class_name and beside.distance_db == fit.distance_db
    assert f"fitted as **{fit.class_name}**, {fit.distance_db:.2f} dB" in beside.line
    with pytest.raises(SfxganError, match="do not start from a sound"):
        studio.beside(studio.new_take("rain", 2, 0))


def test_the_training_clips_to_start_from(studio, demo_dir):
    clips = studio.training_clips()
    assert (
        len(clips) == 30 and ("rain/rain_000.wav", str(demo_dir / "rain" / "rain_000.wav")) in clips
    )
    fewer = studio.training_clips(limit=7)
    assert len(fewer) == 7 and {label.split("/")[0] for label, _ in fewer} == set(studio.classes)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (d / "notes.wav").write_text("not a sound") and d / "notes.wav", "notes.wav"),
        (lambda d: write(d / "quiet.wav", np.zeros(8000, np.float32)), "quiet.wav' is silent"),
        (lambda d: write(d / "late.wav", np.r_[np.zeros(16000), tone(seconds=0.2)]), "late.wav"),
        (lambda d: d, "is a folder"),
        (lambda d: None, "give a sound to start from"),
    ],
    ids=["not-audio", "silent", "silent-in-the-clip", "folder", "nothing"],
)
def test_a_bad_sound_is_refused_with_a_message_naming_it(studio, tmp_path, make, message):
    with pytest.raises(SfxganError) as caught:
        studio.start_from_sound(make(tmp_path))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_fit_request_is_refused_before_any_work(studio, demo_dir):
    sound = demo_dir / "rain" / "rain_000.wav"
    with pytest.raises(SfxganError, match="unknown class 'thunder'"):
        studio.start_from_sound(sound, "thunder")
    with pytest.raises(SfxganError, match="number of variations must be a whole number"):
        studio.start_from_sound(sound, count=MAX_CLIPS + 1)
    with pytest.raises(SfxganError, match="spread must be from 0 to 1, got 1.5"):
        studio.voice("rain", spread=1.5)


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_studio_of_a_missing_run_is_a_one_line_error(tmp_path):
    assert_one_line_error(sfxgan("studio", tmp_path / "nothing"), "does not exist")


@pytest.mark.integration
def test_studio_without_gradio_says_how_to_install_it(tiny_run):
    # a Python in which `import gradio` fails, as where the extra is not installed
    code = (
        "import sys; sys.modules['gradio'] = None; from sfxgan.cli import main; "
        f"sys.exit(main(['studio', {str(tiny_run)!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert_one_line_error(result, "pip install 'sfxgan[studio]'")


def start_studio(run: Path, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sfxgan", "studio", str(run), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )


def wait_until_serving(server: subprocess.Popen, timeout: float = 120) -> str:
    """The address the studio prints once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line and server.poll() is not None:
            pytest.fail(f"the studio exited ({server.returncode}): {server.stderr.read()}")
        if line.startswith("open http"):
            return line.split()[1]
    pytest.fail("the studio did not start listening in time")


@pytest.mark.slow
def test_a_taken_port_is_a_one_line_error(tiny_run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = sfxgan("studio", tiny_run, "--port", port)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "--port")


# --------------------------------------------------------------------------------------------
# the page in a real browser
# --------------------------------------------------------------------------------------------


def chromium_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("the browser test needs Playwright and Chromium (.ci/run installs them)")
        pytest.skip("needs Playwright and Chromium: apt-get install chromium")
    return sync_playwright


@pytest.mark.slow
def test_the_page_in_a_browser(tiny_run, tmp_path):
    sync_playwright = chromium_or_skip()
    # SFXGAN_STUDIO_RUN=demo/run points it at a trained tiny run, for a screenshot worth seeing
    run = Path(os.environ.get("SFXGAN_STUDIO_RUN") or tiny_run)
    server = start_studio(run, free_port())
    try:
        address = wait_until_serving(server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(address, wait_until="load")
            page.wait_for_selector("#generate", timeout=60_000)

            # 4 clips of rain
            class_box = page.locator("#class input")
            class_box.fill("rain")
            class_box.press("Enter")
            count = page.locator("#count input[type=number]")
            count.fill("4")
            count.press("Enter")
            page.click("#generate")
            page.wait_for_function(
                "document.querySelector('#status').innerText.includes('Generated: 4 clips')",
                timeout=60_000,
            )
            status = page.inner_text("#status")
            assert "4 clips of rain" in status, status
            players = page.locator(".clip-audio:visible")
            pictures = page.locator(".clip-picture:visible img")
            page.wait_for_function(
                "document.querySelectorAll('.clip-picture img').length === 4", timeout=30_000
            )
            assert players.count() == 4 and pictures.count() == 4
            for i in range(4):
                link = players.nth(i).locator("a[download]")
                assert link.get_attribute("download") == f"rain_s0_{i + 1}.wav"

            # download all of them
            with page.expect_download() as download:
                page.click("#download-all")
            zip_path = tmp_path / download.value.suggested_filename
            download.value.save_as(zip_path)
            assert zip_path.name == "rain_s0.zip"
            with zipfile.ZipFile(zip_path) as archive:
                names = sorted(archive.namelist())
                assert names == [f"rain_s0_{i}.wav" for i in range(1, 5)]
                for name in names:
                    audio, rate = sf.read(io.BytesIO(archive.read(name)), dtype="float32")
                    assert rate == 16000 and audio.shape == (8192,)
                    # peak-normalised, as the page starts: an empty loudness box once sent
                    # 0 LUFS, which finished every take under a -1 dBTP ceiling instead
                    assert np.abs(audio).max() == pytest.approx(1.0, abs=1e-3)

            TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
            screenshot = TEST_OUTPUT / "studio.png"
            page.screenshot(path=screenshot, full_page=True)
            shutil.copy(zip_path, TEST_OUTPUT / zip_path.name)
            print(f"\nstudio screenshot: {screenshot}\nstudio status: {status}")

            # a bad request: a message on the page, the clips stay
            class_box.fill("thunder")
            class_box.press("Enter")
            page.click("#generate")
            page.wait_for_function(
                "document.querySelector('#status').innerText.includes('Not done')",
                timeout=30_000,
            )
            assert "unknown class 'thunder'" in page.inner_text("#status")
            assert page.locator(".clip-audio:visible").count() == 4
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


@pytest.mark.slow
def test_start_from_a_sound_in_a_browser(tiny_run, demo_dir, tmp_path, monkeypatch):
    """The "Start from a sound" panel driven as a user would: upload a sound, fit it, hear it
    beside its fitted take, move the spread, regenerate a clip, download the clips; then fit a
    training clip in a class asked, a file that is no sound, and a recording (Chromium's fake
    microphone, which plays a demo clip). The page is served in this process (build_page, as
    `sfxgan studio` serves it) so that the fit can be a quick one."""
    sync_playwright = chromium_or_skip()
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    workdir = tmp_path / "studio"
    studio = Studio(Sampler.from_run(tiny_run, device="cpu"), workdir)
    studio.fitting = dict(FAST_FIT)
    port = free_port()
    page_app = build_page(studio, "tiny")
    page_app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(workdir)],
        css=CSS,
    )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[  # a microphone that plays a rain clip, over and over
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-audio-capture={demo_dir / 'rain' / 'rain_001.wav'}",
                ],
            )
            context = browser.new_context(viewport={"width": 1280, "height": 1400})
            context.grant_permissions(["microphone"], origin=f"http://127.0.0.1:{port}")
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}", wait_until="load")
            page.wait_for_selector("#generate", timeout=60_000)
            _fit_an_upload(page, demo_dir / "rain" / "rain_000.wav", tmp_path)
            _fit_a_training_clip_and_a_bad_file(page, tmp_path)
            _fit_a_recording(page)
            browser.close()
    finally:
        page_app.close()


def _wait_for_status(page, text: str, before: str = "", timeout: float = 120_000) -> str:
    """The status line once it says `text`, or that a request was not done (then it fails,
    saying why); `before`, the line before the request, is not taken for its answer."""
    page.wait_for_function(
        """([text, before]) => {
            const said = document.querySelector('#status').innerText;
            return said.includes(text) || (said.includes('Not done') && !said.includes(before));
        }""",
        arg=[text, before or "\0"],
        timeout=timeout,
    )
    status = page.inner_text("#status")
    assert text in status, status
    return status


def _downloads(page) -> list[str]:
    players = page.locator(".clip-audio:visible")
    return [players.nth(i).locator("a[download]").get_attribute("download") for i in range(4)]


def _fit_an_upload(page, sound: Path, tmp_path: Path) -> None:
    page.click("#from-sound > button")  # open the panel
    page.set_input_files("#sound input[type=file]", str(sound))
    page.wait_for_selector(f"#sound a[href$='/{sound.name}']", state="attached")
    page.click("#fit")
    status = _wait_for_status(page, "Fitted rain_000.wav")
    found = page.locator("#class input").input_value()  # the page now voices the class found
    line = page.inner_text("#fit-line")
    assert f"rain_000.wav fitted as {found}, " in line and " dB from the sound" in line, line
    assert f"4 clips of {found}_sp30" in status, status
    assert page.locator("#original a[download]").get_attribute("download") == "rain_000.wav"
    fitted_name = page.locator("#fitted a[download]").get_attribute("download")
    assert fitted_name == f"{found}_from-rain_000_s0_fit.wav"
    assert page.locator("#original-picture img, #fitted-picture img").count() == 2
    assert page.locator(".clip-audio:visible").count() == 4
    assert _downloads(page) == [f"{found}_sp30_from-rain_000_s0_{i}.wav" for i in range(1, 5)]

    # the spread slider let go at its left end: the fitted take in every clip
    box = page.locator("#spread input[type=range]").bounding_box()
    page.mouse.click(box["x"] + 1, box["y"] + box["height"] / 2)
    status = _wait_for_status(page, "Re-voiced")
    assert f"4 clips of {found}_sp0 " in status, status
    page.get_by_role("button", name="Regenerate clip 2").click()
    _wait_for_status(page, "Regenerated clip 2")
    assert _downloads(page)[1] == f"{found}_sp0_from-rain_000_s0_2r1.wav"
    with page.expect_download() as download:
        page.click("#download-all")
    assert download.value.suggested_filename == f"{found}_sp0_from-rain_000_s0.zip"
    zip_path = tmp_path / download.value.suggested_filename
    download.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(_downloads(page))
    TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=TEST_OUTPUT / "studio-from-sound.png", full_page=True)


def _fit_a_training_clip_and_a_bad_file(page, tmp_path: Path) -> None:
    clip = page.locator("#training-clip input")
    clip.fill("gunshots/gunshots_001.wav")
    clip.press("Enter")
    # a training clip picked clears the upload: the page fits what it shows
    page.wait_for_selector("#sound [data-testid=upload-text]", state="visible")
    fit_class = page.locator("#fit-class input")
    fit_class.fill("gunshots")
    fit_class.press("Enter")
    page.click("#fit")
    status = _wait_for_status(page, "Fitted gunshots_001.wav")
    assert "4 clips of gunshots_sp0 " in status, status
    assert "gunshots_001.wav fitted as gunshots, " in page.inner_text("#fit-line")
    assert page.locator("#class input").input_value() == "gunshots"

    (tmp_path / "notes.wav").write_text("not a sound")
    page.set_input_files("#sound input[type=file]", str(tmp_path / "notes.wav"))
    page.wait_for_selector("#sound a[href$='/notes.wav']", state="attached")
    page.wait_for_function("document.querySelector('#training-clip input').value === ''")
    page.click("#fit")
    status = _wait_for_status(page, "Not done", 30_000)
    assert "notes.wav" in status and "could not be decoded" in status, status
    assert page.locator(".clip-audio:visible").count() == 4  # the clips stay


def _fit_a_recording(page) -> None:
    page.locator("#sound button[aria-label='Clear']").first.click()
    page.click("#sound button[aria-label='Record audio']")
    page.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(1500)
    page.locator("#sound button:visible", has_text="Stop").first.click()
    # the recording reached the server once its player offers it for download (as audio.wav)
    page.wait_for_selector("#sound a[href$='/audio.wav']", state="attached", timeout=30_000)
    before = page.inner_text("#status")  # the bad file's message
    page.click("#fit")
    status = _wait_for_status(page, "Fitted audio.wav", before)  # the browser names it so
    assert "4 clips of " in status and "_sp0 " in status, status
    assert "audio.wav fitted as " in page.inner_text("#fit-line")
