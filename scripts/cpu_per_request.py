"""Server CPU per small request: a real `sealbox serve` driven by `hey` at 16 clients.

    PYTHONPATH=src python scripts/cpu_per_request.py SRC_DIR [--requests 2000] [--profile PHASE]

Starts the server whose package is under SRC_DIR (so two trees can be compared in one
run), on a data directory under /var/tmp (the work disk, not /tmp), and prints for each
phase (4 KiB download through the API, raw 4 KiB upload, a 10-file listing page, a link
download) the server's user+sys CPU per request from /proc/PID/stat, and hey's req/s
(noise on a shared machine: compare the CPU). --profile PHASE records that phase with
py-spy (--gil, raw collapsed stacks) next to the data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).parents[1]))
from bench.measure import process_cpu_seconds
from bench.systems import free_port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src", type=Path)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    port = free_port()
    work = Path(f"/var/tmp/sealbox-cpu-{port}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(args.src.resolve()),
        "SEALBOX_DATA_DIR": str(work / "data"),
        "SEALBOX_KEYRING": str(work / "config" / "keyring.json"),
        "SEALBOX_MAX_UPLOAD_SIZE": "64G",
        "TMPDIR": str(work),
    }
    with (work / "server.out").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sealbox", "serve", "--port", str(port)], cwd=work, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        found = re.search(r"admin password:\s+(\S+)", (work / "server.out").read_text())
        assert found, "the server printed no admin password"
        login = {"username": "admin", "password": found.group(1)}
        token = httpx.post(url + "/api/v1/auth/token", data=login).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        body = work / "body"
        body.write_bytes(os.urandom(4096))
        named = {**auth, "Content-Disposition": "attachment; filename*=UTF-8''a.bin"}
        file_id = httpx.post(url + "/api/v1/files", content=body.read_bytes(), headers=named).json()["id"]
        link = httpx.post(f"{url}/api/v1/files/{file_id}/shares", json={}, headers=auth).json()["token"]
        phases = {
            "download": ["GET", f"{url}/api/v1/files/{file_id}/content"],
            "upload": [
                "POST",
                f"{url}/api/v1/files",
                "-D",
                str(body),
                "-T",
                "application/octet-stream",
                "-H",
                "Content-Disposition: attachment; filename*=UTF-8''b.bin",
            ],
            "list": ["GET", f"{url}/api/v1/files?limit=10"],
            "link": ["GET", f"{url}/s/{link}/download"],
        }
        for name, (method, target, *extra) in phases.items():
            for _ in range(20):  # warm up
                httpx.request(method, target, headers=auth) if method == "GET" else None
            spy = None
            if args.profile == name:
                output = work / f"profile-{name}.txt"
                py_spy = [Path(sys.executable).parent / "py-spy", "record", "--gil", "-f", "raw", "-o", str(output)]
                spy = subprocess.Popen([*py_spy, "--pid", str(proc.pid)], stdout=subprocess.DEVNULL)
                time.sleep(1)
            before = process_cpu_seconds([proc.pid])
            hey = ["hey", "-n", str(args.requests), "-c", "16", "-m", method, "-H", f"Authorization: Bearer {token}"]
            result = subprocess.run([*hey, *extra, target], capture_output=True, text=True, check=True)
            spent = process_cpu_seconds([proc.pid]) - before
            if spy is not None:
                spy.send_signal(2)
                spy.wait()
            rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
            statuses = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", result.stdout))
            answered = sum(int(count) for count in statuses.values()) or args.requests  # hey rounds n to c
            print(
                json.dumps(
                    {
                        "phase": name,
                        "cpu_ms_per_request": round(spent / answered * 1000, 3),
                        "requests_per_s": float(rate.group(1)) if rate else None,
                        "statuses": statuses,
                    }
                )
            )
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
