"""Server CPU per request: the files page of a folder of N files against the API listing
of the same folder (both one page of 100, sorted by name; then with a filter),
interleaved, median of 3 rounds of 10 requests, from /proc/PID/stat of the server.

    PYTHONPATH=src python scripts/measure_files_page.py [N] [DIR]

DIR (default: a new temporary directory) holds the installation.
"""

import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
import httpx2 as httpx
from tests.integration.server import Installation, Server, login, named

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="files-page-"))
server = Server(Installation(root / "install")).start()
TICK = os.sysconf("SC_CLK_TCK")


def cpu() -> float:
    total = 0
    for pid in server.worker_pids():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICK


try:
    token = login(server.url, "admin", server.admin_password or "")
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    folder = api.post("/api/v1/folders", json={"name": "many"}).json()["id"]
    for n in range(N):
        api.post("/api/v1/files", params={"folder": folder}, headers=named(f"file {n:06}.txt"), content=b"x")
    web = httpx.Client(base_url=server.url, timeout=120)
    assert web.post("/login", data={"username": "admin", "password": server.admin_password}).status_code == 303
    cases = {
        "api": lambda: api.get(f"/api/v1/folders/{folder}", params={"limit": 100}),
        "page": lambda: web.get("/files", params={"folder": folder}),
        "api q": lambda: api.get(f"/api/v1/folders/{folder}", params={"limit": 100, "q": "00 7"}),
        "page q": lambda: web.get("/files", params={"folder": folder, "q": "00 7"}),
    }
    for f in cases.values():
        assert f().status_code == 200  # warm up
    results: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(3):
        for name, f in cases.items():
            before = cpu()
            for _ in range(10):
                assert f().status_code == 200
            results[name].append((cpu() - before) / 10 * 1000)
    for name, values in results.items():
        rounds = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:7} server CPU ms/request, median of 3 rounds: {statistics.median(values):.1f}  ({rounds})")
    ratio = [p / a for p, a in zip(results["page"], results["api"], strict=True)]
    print(f"page/api ratio within rounds: {', '.join(f'{r:.2f}' for r in ratio)}")
finally:
    server.stop()
