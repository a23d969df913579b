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
