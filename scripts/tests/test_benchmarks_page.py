"""BENCHMARKS.md is scripts/bench's page: it says so, and its end is, as they are, the files no script writes
(benches/TUNING.md and the dated results of benches/results/), so the next run of scripts/bench keeps them."""
from benchmarks_page import GENERATED, ROOT, kept_by_hand


def test_the_page_says_it_is_generated():
    page = (ROOT / "BENCHMARKS.md").read_text()
    assert page.startswith("# Benchmarks\n\n" + GENERATED)


def test_the_page_ends_with_every_result_kept_by_hand_as_written():
    page = (ROOT / "BENCHMARKS.md").read_text()
    assert page.endswith(kept_by_hand())


def test_every_kept_result_is_dated_and_names_the_command_that_produced_it():
    for path in sorted((ROOT / "benches" / "results").glob("*.md")):
        if path.name == "README.md":
            continue
        assert path.name[:10].count("-") == 2 and path.name[:4].isdigit(), path.name
        assert "`" in path.read_text().split("\n\n")[1], f"{path.name}: its first paragraph names no command"
