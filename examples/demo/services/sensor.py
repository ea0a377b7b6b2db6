"""Demo sensor: prints a reading at a fixed rate until stopped."""
import argparse
import os
import random
import time

parser = argparse.ArgumentParser()
parser.add_argument("--rate", type=float, default=10.0, help="readings per second")
args = parser.parse_args()
robot = os.environ.get("ROBOT_ID", "robot")
n = 0
while True:
    n += 1
    if n % int(args.rate) == 0:
        print(f"{robot} sensor reading #{n}: {random.random():.3f}", flush=True)
    time.sleep(1.0 / args.rate)
