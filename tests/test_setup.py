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


def test_the_browser_tests_ask_for_libatomic_where_it_is_missing(tmp_path):
    """Playwright's Node.js driver links libatomic.so.1, which a minimal Debian 12 lacks (the browser tests then
    failed to start in a debootstrap'd Debian 12): setup.sh --browser installs libatomic1 when ldconfig does not list
    it. Stand-ins answer for python3 (3.11, with venv), npm, chromium and ldconfig (no libatomic); the stand-in apt-get
    records what it is asked to install and refuses it, so nothing is installed and no venv is made."""
    fake = tmp_path / "bin"
    fake.mkdir()
    scripts = {
        "python3": '#!/bin/sh\ncase "$2" in *ensurepip*) exit 0;; *) echo 3.11;; esac\n',
        "npm": "#!/bin/sh\nexit 0\n",
        "chromium": "#!/bin/sh\nexit 0\n",
        "ldconfig": "#!/bin/sh\necho '\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6'\n",
        "apt-get": f'#!/bin/sh\n[ "$1" = update ] && exit 0\necho "$@" >> {tmp_path}/asked\nexit 1\n',
        "id": "#!/bin/sh\necho 0\n",  # root: no sudo
    }
    for name, text in scripts.items():
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    repo = tmp_path / "repo"  # a copy of the script, so that nothing it might do reaches this checkout's venv
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "setup.sh").write_text((ROOT / "scripts" / "setup.sh").read_text())
    run = subprocess.run(["bash", str(repo / "scripts" / "setup.sh"), "--browser"], capture_output=True, text=True,
                         timeout=60, env={"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path)}, check=False)
    assert run.returncode != 0 and "libatomic1" in run.stdout, run.stdout + run.stderr
    assert "libatomic1" in (tmp_path / "asked").read_text().split()
