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
        assert Version(dist.version).public == Version(version).public, \
            f"the venv has {name} {dist.version}, the lock {version}: run scripts/setup.sh"
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


def _only(tmp_path, tools: dict[str, str], os_release: str = "ID=debian\n") -> tuple[list[str], dict[str, str]]:
    """A copy of setup.sh that reads ``os_release`` as /etc/os-release, and a PATH holding only ``tools`` (stand-in
    scripts) and dirname: the command and environment to run it with."""
    import shutil

    fake = tmp_path / "bin"
    fake.mkdir()
    for name, text in {"dirname": None, **tools}.items():
        if text is None:
            (fake / name).symlink_to(shutil.which(name))
        else:
            (fake / name).write_text(text)
            (fake / name).chmod(0o755)
    (tmp_path / "os-release").write_text(os_release)
    (tmp_path / "repo" / "scripts").mkdir(parents=True)
    script = tmp_path / "repo" / "scripts" / "setup.sh"
    script.write_text((ROOT / "scripts" / "setup.sh").read_text().replace("/etc/os-release",
                                                                          str(tmp_path / "os-release")))
    return ["/bin/bash", str(script)], {"PATH": str(fake), "HOME": str(tmp_path)}


PYTHON_311 = '#!/bin/sh\ncase "$2" in *ensurepip*) exit 0;; *) echo 3.11;; esac\n'


def test_ubuntus_snap_only_chromium_is_named_before_anything_is_installed(tmp_path):
    command, env = _only(tmp_path, {"python3": PYTHON_311, "npm": "#!/bin/sh\n", "apt-get": "#!/bin/sh\nexit 9\n"},
                         os_release='NAME="Ubuntu"\nID=ubuntu\n')
    run = subprocess.run([*command, "--browser"], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Ubuntu's chromium package is a snap stub" in run.stderr and "set CHROMIUM=" in run.stderr
    assert not (tmp_path / "repo" / ".venv").exists()


def test_a_user_without_root_or_sudo_is_told_what_to_install(tmp_path):
    command, env = _only(tmp_path, {"python3": PYTHON_311, "id": "#!/bin/sh\necho 1000\n",
                                    "apt-get": "#!/bin/sh\nexit 9\n"})  # no npm, no sudo
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert ("missing: npm" in run.stderr
            and "needs root: run as root, or install them (apt-get install npm" in run.stderr)
    assert not (tmp_path / "repo" / ".venv").exists()
