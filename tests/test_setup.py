"""scripts/setup.sh checks what the machine must have before it changes anything, and says what to do."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_another_python_is_refused_with_what_to_do(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text("#!/bin/sh\necho 3.10\n")  # answers the version question as Python 3.10 would
    (fake / "python3").chmod(0o755)
    run = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=60,
                         env={"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path)}, check=False)
    assert run.returncode != 0
    assert "is for Python 3.11; python3 is 3.10" in run.stderr and "Install Python 3.11" in run.stderr
    assert not (tmp_path / ".venv").exists()


def test_every_locked_package_installs_on_debian_12s_python():
    """The README's machine is a fresh Debian 12, whose python3 is 3.11.2: a pin whose release asks for a newer
    3.11 (soupsieve 4.1.2 asks for >= 3.11.5) stops setup.sh there. The venv holds the lock's versions (setup.sh
    installs them), so their metadata says what each one accepts."""
    import importlib.metadata as metadata

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    pins = [line.split("==") for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    refused = []
    for name, version in pins:
        dist = metadata.distribution(name)
        assert Version(dist.version).public == Version(version).public, f"the venv has {name} {dist.version}, the lock {version}: run scripts/setup.sh"
        needs = dist.metadata.get("Requires-Python")
        if needs and not SpecifierSet(needs).contains("3.11.2"):
            refused.append(f"{name}=={version} (Requires-Python {needs})")
    assert not refused, f"not installable with Debian 12's Python 3.11.2: {refused}"
