"""Core API stage 0 (after Determined's core_api/0_start.py): the training script as it was
before any Determined integration; it reports nothing."""
import sys


def main(step_size):
    total = 0
    for batch in range(30):
        total += step_size
        print(f"total is now {total}")
    sys.stdout.flush()


if __name__ == "__main__":
    main(step_size=1)
