"""Seed 000's quick start (KPainter OpenAPI), as the document writes it, against Atelier.

Only the two settings differ: BASE_URL and the key come from KGP_BASE_URL and KGP_API_KEY
(defaults: a local ./deploy/run.sh and its development key). Everything below them is the
document's own code, step by step.
"""
import os
import time

import requests

BASE_URL = os.environ.get("KGP_BASE_URL", "http://127.0.0.1:8080/openapi/v1")
HEADERS = {
    "X-KGP-Api-Key": os.environ.get("KGP_API_KEY", "sk-local-dev-key"),
}

# Step 1: check the key
me_response = requests.get(f"{BASE_URL}/me", headers=HEADERS, timeout=30)
me_response.raise_for_status()
print(me_response.json())

# Step 2: read the catalog
catalog_response = requests.get(f"{BASE_URL}/catalog", headers=HEADERS, timeout=30)
catalog_response.raise_for_status()
catalog = catalog_response.json()
print(catalog["content_types"])

# Step 3: create
create_payload = {
    "type": "slides_video",
    "prompt": "用 6 页讲清楚 transformer 的 attention 是怎么工作的",
    "language": "zh",
    "aspect_ratio": "16:9",
    "scene_count": 6,
}

create_response = requests.post(
    f"{BASE_URL}/creations",
    headers={**HEADERS, "Content-Type": "application/json"},
    json=create_payload,
    timeout=30,
)
create_response.raise_for_status()

creation = create_response.json()
creation_id = creation["creation_id"]
job_id = creation["job"]["job_id"]

print({"creation_id": creation_id, "job_id": job_id})

# Step 4: poll the job
while True:
    job_response = requests.get(
        f"{BASE_URL}/creations/jobs/{job_id}",
        headers=HEADERS,
        timeout=30,
    )
    job_response.raise_for_status()
    job = job_response.json()
    print(job["status"], job.get("progress_pct"), job.get("current_step"))
    if job["status"] == "succeeded":
        break
    if job["status"] in {"failed", "cancelled"}:
        raise RuntimeError(job)
    time.sleep(3)

# Step 5: read the detail
detail_response = requests.get(
    f"{BASE_URL}/creations/{creation_id}",
    headers=HEADERS,
    timeout=30,
)
detail_response.raise_for_status()
detail = detail_response.json()

print(detail["main_url"])
print(detail.get("artifacts", []))
print(detail.get("scenes", []))
