"""The README's test command is what CI runs; the two must not drift apart."""

from tests.helpers import REPO


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    blocks = readme.split("```")[1::2]
    commands = [b.strip() for b in blocks if b.strip().startswith("python3 -m venv")]
    assert len(commands) == 2, "the README holds exactly two set-up commands"
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in ci
