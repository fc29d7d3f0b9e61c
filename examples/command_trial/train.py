"""A trial as a plain script: no import of asha_hpc, only environment variables and files.

ASHA_HPARAMS           the hyperparameters (JSON)
ASHA_TARGET_LENGTH     train until this many batches in total
ASHA_LATEST_CHECKPOINT where the last checkpoint is ("" for a new trial)
ASHA_CHECKPOINT_DIR    write the new checkpoint's files here
ASHA_REPORT_FILE       append JSON lines: {"metrics": {...}} for the result,
                       {"step": N, "metrics": {...}} for the learning curve
ASHA_STOP_FILE         appears when the job must checkpoint and leave
"""
import json
import os
import time

hp = json.loads(os.environ["ASHA_HPARAMS"])
target = int(os.environ["ASHA_TARGET_LENGTH"])
latest = os.environ["ASHA_LATEST_CHECKPOINT"]
batch = 0
if latest:
    with open(os.path.join(latest, "state.json")) as f:
        batch = json.load(f)["batch"]

report = open(os.environ["ASHA_REPORT_FILE"], "a")
error = 1.0
while batch < target:
    if os.path.exists(os.environ["ASHA_STOP_FILE"]):
        break
    time.sleep(0.02)
    batch += 1
    error = abs(hp["momentum"] - 0.9) + 1.0 / (hp["width"] * batch)
    report.write(json.dumps({"step": batch, "metrics": {"error": error}}) + "\n")

with open(os.path.join(os.environ["ASHA_CHECKPOINT_DIR"], "state.json"), "w") as f:
    json.dump({"batch": batch}, f)
if batch >= target:
    report.write(json.dumps({"metrics": {"error": error}}) + "\n")
report.close()
