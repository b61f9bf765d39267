"""Running named checks, for the test command's Python checkers: each check a name and a function that
returns whether it holds; one that raises has failed. The closing line is the form the test command counts."""


def run(label, checks):
    passed, failed = 0, 0
    for name, check in checks:
        try:
            ok = bool(check())
        except Exception as error:  # a check that cannot run has failed
            ok, name = False, f"{name} ({error!r})"
        print(f"{'ok    ' if ok else 'FAILED'} {name}")
        passed, failed = passed + ok, failed + (not ok)
    print(f"{label}: {passed} passed, {failed} failed")
    return 1 if failed else 0
