"""Demo processor: does 'work' once a second until stopped."""
import os
import time

print(f"processor of workspace {os.environ.get('KRILL_WORKSPACE')} up", flush=True)
while True:
    time.sleep(1)
    print("processed a batch", flush=True)
