"""`ingestbox doctor`: can this machine do the work? Encoders, libmagic, clamd, storage, database."""

from __future__ import annotations

import sqlite3
from typing import Any

from appliance.config import Settings
from hwaccel.probe import probe_all


def _check(fn: Any) -> dict[str, Any]:
    try:
        detail = fn()
        return {"ok": True, "detail": detail}
    except Exception as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}


def _libmagic() -> str:
    import magic

    mime = magic.from_buffer(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", mime=True)
    if mime != "application/pdf":
        raise RuntimeError(f"libmagic calls a PDF header {mime!r}")
    return f"libmagic {magic.version() if hasattr(magic, 'version') else ''}".strip()


def _clamd(settings: Settings) -> str:
    from appliance.uploads.clamd import ping

    address = settings.uploads.clamd.address
    if not address:
        return "not configured (uploads are not scanned)"
    ping(address)
    return f"clamd answers at {address}"


def _storage(settings: Settings) -> str:
    from appliance.storage import open_store

    store = open_store(settings)
    store.check()
    return store.describe()


def _database(settings: Settings) -> str:
    path = settings.server.data_dir / "ingestbox.db"
    if not path.exists():
        return f"{path} not created yet (made at first start)"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("PRAGMA quick_check").fetchone()
    return f"{path} (journal {mode}, schema {version})"


def doctor_report(settings: Settings) -> dict[str, Any]:
    hw = probe_all(settings.hwaccel.mode, list(settings.hwaccel.prefer))
    report = hw.to_dict()
    report["libmagic"] = _check(_libmagic)
    report["clamd"] = _check(lambda: _clamd(settings))
    report["storage"] = _check(lambda: _storage(settings))
    report["database"] = _check(lambda: _database(settings))
    return report


def render_doctor(report: dict[str, Any]) -> str:
    lines = ["Video encoders:"]
    for backend in report["backends"]:
        mark = "usable" if backend["usable"] else "not usable"
        lines.append(f"  {backend['name']:<8} {mark:<11} {backend['reason']}")
    lines.append(f"  chosen: {report['chosen']} (mode {report['mode']})")
    lines.append("Hardware decoders:")
    for decoder in report.get("decoders", []):
        mark = "usable" if decoder["usable"] else "not usable"
        lines.append(f"  {decoder['name']:<8} {mark:<11} {decoder['reason']}")
    for name in ("libmagic", "clamd", "storage", "database"):
        check = report[name]
        lines.append(f"{name + ':':<10} {'ok' if check['ok'] else 'FAILED':<7} {check['detail']}")
    return "\n".join(lines)


