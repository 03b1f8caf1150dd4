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

from sfxgan.apps.studio import MAX_CLIPS, Studio
from sfxgan.errors import SfxganError
from sfxgan.generate import Sampler
from tests.helpers import assert_one_line_error, free_port, sfxgan

REPO = Path(__file__).resolve().parents[1]
# where the browser test leaves its screenshot (and the ZIP it downloaded) for people to look at
TEST_OUTPUT = Path(os.environ.get("SFXGAN_TEST_OUTPUT", REPO / "build" / "test-output"))
CHROMIUM = os.environ.get("SFXGAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def studio(tiny_run, tmp_path_factory) -> Studio:
    return Studio(Sampler.from_run(tiny_run, device="cpu"), tmp_path_factory.mktemp("studio"))


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
                    assert 0.5 < np.abs(audio).max() <= 1.0  # peak-normalised, not silent

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
