"""Every fact once: a number the code holds is printed by the code (`meters-local facts`), and the README and docs/
write it only beside its name, as "`NAME` (value)", which is checked here against the code; every such fact is
named somewhere. Nothing links outside the repository."""
import json
import re

import pytest

from cfn.stacks import ROOT, meters_local

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def facts() -> dict:
    return json.loads(meters_local("facts"))


def mentions():
    for page in PAGES:
        for name, value in re.findall(r"`([A-Z][A-Z0-9_]+)` \(([\d,.]+)", page.read_text()):
            yield page.relative_to(ROOT), name, int(value.replace(",", "").rstrip("."))


def test_every_number_written_beside_a_facts_name_is_the_codes():
    known = facts()
    wrong = [f"{page}: `{name}` ({value}) but the code holds {known[name]}"
             for page, name, value in mentions() if name in known and known[name] != value]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(json.loads(meters_local("facts"))))
def test_every_fact_is_named_in_the_docs_with_its_value(name):
    assert any(mentioned == name for _, mentioned, _ in mentions()), f"`{name}` (its value) is written nowhere"


def test_no_page_links_outside_the_repository():
    outside = [f"{page.relative_to(ROOT)}: {link}" for page in PAGES
               for link in re.findall(r"\.\./shared/[^\s)`]+|\.\./\.\./[^\s)`]+", page.read_text())]
    assert not outside, outside


def test_openapi_states_how_long_lists_may_take_to_show_a_reading():
    bound = facts()["LIST_READINGS_BOUND_SECONDS"]
    assert f"at most {bound} seconds after `GET` shows them (`LIST_READINGS_BOUND_SECONDS`)" in (ROOT / "openapi.yaml").read_text()
