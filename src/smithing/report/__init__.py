"""Figures (matplotlib) and the static HTML report, read from the results store."""


def write_report(out_dir, studies=None):
    from smithing.report.html import write_report as _w

    return _w(out_dir, studies)


__all__ = ["write_report"]
