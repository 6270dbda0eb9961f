"""Progress lines: redrawn on a terminal, absent from logs."""

import io

from models.export.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_line_and_what_is_kept():
    screen = Terminal()
    progress = Progress(screen)
    progress.transfer("downloading w.pth", 50_000_000, 200_000_000)
    progress.update("too soon: dropped")  # within 0.1 s of the last redraw
    progress.end("downloaded w.pth (200.0 MB)")
    assert screen.getvalue() == (
        "\r\033[Kdownloading w.pth: 50.0 of 200.0 MB (25%)\r\033[Kdownloaded w.pth (200.0 MB)\n"
    )


def test_a_log_gets_nothing():
    log = io.StringIO()
    progress = Progress(log)
    progress.transfer("downloading w.pth", 1, None)
    progress.update("exporting")
    progress.end("done")
    assert log.getvalue() == ""
