"""A real clamd (Debian's clamav-daemon) on a unix socket, with a one-line EICAR signature database."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.uploads.clamd import ClamdUnavailable, ping

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Eicar-Test-Signature"


@dataclass
class Clamd:
    process: subprocess.Popen[bytes]
    socket: Path

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


def start_clamd(directory: Path) -> Clamd:
    binary = shutil.which("clamd") or "/usr/sbin/clamd"
    if not Path(binary).exists():
        raise RuntimeError("clamd is not installed: apt-get install clamav-daemon (scripts/test.sh does)")
    database = directory / "db"
    database.mkdir(parents=True, exist_ok=True)
    # An .ndb body signature: the EICAR bytes anywhere in any file type. No internet needed.
    (database / "eicar.ndb").write_text(f"{SIGNATURE}:0:*:{EICAR.hex()}\n")
    sock = directory / "clamd.ctl"
    config = directory / "clamd.conf"
    config.write_text(
        f"LocalSocket {sock}\nDatabaseDirectory {database}\nForeground yes\nLogFile {directory / 'clamd.log'}\n"
        # Debian's defaults cap a stream at 25 MB; uploads go to 500 MB.
        "StreamMaxLength 600M\nMaxFileSize 600M\nMaxScanSize 600M\nMaxThreads 4\n"
    )
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"clamd exited with {process.returncode}; see {directory / 'clamd.log'}")
        try:
            ping(f"unix://{sock}", 2)
            return Clamd(process, sock)
        except ClamdUnavailable:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("clamd did not answer PING within 60 s")
