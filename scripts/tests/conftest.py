"""pytest for the scripts' Python: the checks of template.yaml and pipeline/bootstrap.yaml, and the deploy."""
import pathlib
import sys

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCRIPTS))


def pytest_terminal_summary(terminalreporter):
    """The closing line the test command counts (`name: N passed, M failed`)."""
    stats = terminalreporter.stats
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    terminalreporter.write_line(f"pytest: {len(stats.get('passed', []))} passed, {failed} failed")
