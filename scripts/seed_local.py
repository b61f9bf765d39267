#!/usr/bin/env python3
"""Creates N realistic meters in one account of a running meters-local, over HTTP: seed_local.py PORT ACCOUNT TOKEN N"""
import json, sys, urllib.request, time
from concurrent.futures import ThreadPoolExecutor
port, account, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
words = ["Main", "Riser", "Chiller", "Boiler", "Lift", "Kitchen", "Roof", "Car park"]
def create(i):
    marker = " needle" if i % 1000 == 7 else ""
    body = json.dumps({"account_id": account, "name": f"{words[i % 8]} meter {i * 7919 % 100000}", "serial_number": f"EM-2024-{i:08d}",
        "location": f"Building {i % 9}, floor {i % 14}, riser {i % 4}", "meter_type": ["ELECTRICITY","GAS","WATER","SOLAR","HVAC"][i % 5],
        "description": f"Sub-meter on distribution board {i % 97}, feeding the {words[(i // 8) % 8].lower()} loads of wing {i % 5}; read every 15 minutes{marker}.",
        "reading_interval": 900, "last_reading_value": (i % 10000) * 1.5}).encode()
    r = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/meters", data=body, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(r).read()
t = time.time()
with ThreadPoolExecutor(8) as ex: list(ex.map(create, range(n)))
print(f"seeded {n} in {time.time()-t:.1f}s", file=sys.stderr)
