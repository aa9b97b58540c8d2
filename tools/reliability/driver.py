"""A camera driver in a process of its own (the thing that dies): colour + 16UC1 depth + both CameraInfos at a
fixed rate, stamped with the wall clock, until SIGINT (clean exit) or SIGKILL.

    python tools/reliability/driver.py --rate 15 --width 64 --height 48
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reliability import rosenv  # noqa: E402,F401 - ROS network safety before rclpy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=15.0, help="frames per second")
    parser.add_argument("--width", type=int, default=64, help="image width (pixels)")
    parser.add_argument("--height", type=int, default=48, help="image height (pixels)")
    parser.add_argument("--reliable", action="store_true", help="reliable QoS (default: best effort)")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt: a clean exit, node destroyed

    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from reliability.rig import Rig

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # rclpy's handler would end the context under us
    rig = Rig(args.width, args.height, reliable=args.reliable, name="strvos_soak_camera_driver", recorder=False)
    print("driver: publishing", flush=True)
    period, start = 1.0 / args.rate, time.monotonic()
    try:
        while True:
            rig.send_frame(time.time())
            time.sleep(max(start + rig.sent * period - time.monotonic(), 0.0))
    except KeyboardInterrupt:
        pass
    finally:
        print(f"driver: sent {rig.sent}", flush=True)
        rig.close()
        rclpy.shutdown()


if __name__ == "__main__":
    main()
