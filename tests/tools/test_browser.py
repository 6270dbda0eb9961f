"""Which browser and driver the web tests and the screenshots start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.browser import browser_and_driver


def executable(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """No CHROME_BIN or CHROMEDRIVER and a PATH of one empty folder; returns that folder."""
    monkeypatch.delenv("CHROME_BIN", raising=False)
    monkeypatch.delenv("CHROMEDRIVER", raising=False)
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def test_chromium_on_path_comes_before_google_chrome(bare):
    chrome, chromium, driver = (executable(bare, n) for n in ("google-chrome", "chromium", "chromedriver"))
    assert browser_and_driver() == (str(chromium), str(driver))
    chromium.unlink()
    assert browser_and_driver() == (str(chrome), str(driver))


def test_the_environment_names_the_pair(bare, tmp_path, monkeypatch):
    # A GitHub runner: /usr/bin/chromium is a Chromium snapshot, CHROME_BIN its Google Chrome,
    # whose chromedriver matches Chrome's version, not the snapshot's.
    executable(bare, "chromium")
    chrome = executable(tmp_path, "google-chrome")
    driver = executable(tmp_path, "chromedriver")
    monkeypatch.setenv("CHROME_BIN", str(chrome))
    monkeypatch.setenv("CHROMEDRIVER", str(driver))
    assert browser_and_driver() == (str(chrome), str(driver))


@pytest.mark.parametrize("variable", ["CHROME_BIN", "CHROMEDRIVER"])
def test_a_variable_naming_no_executable_is_refused_by_name(bare, tmp_path, monkeypatch, variable):
    executable(bare, "chromium")
    executable(bare, "chromedriver")
    (tmp_path / "plain").write_text("")
    for value in (str(tmp_path / "absent"), str(tmp_path / "plain"), str(bare)):
        monkeypatch.setenv(variable, value)
        with pytest.raises(FileNotFoundError, match=f"^{variable}="):
            browser_and_driver()


def test_nothing_found_says_how_to_get_it(bare):
    executable(bare, "chromium")
    with pytest.raises(FileNotFoundError, match="apt-get install chromium chromium-driver, or set CHROME_BIN"):
        browser_and_driver()
