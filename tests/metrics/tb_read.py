#!/usr/bin/env python3
"""Loads a TensorBoard log directory with TensorBoard's own reader
(EventAccumulator, the loader behind `tensorboard --logdir`) and prints what
TensorBoard shows of it, one line per item:

  file_version brain.Event:2
  scalar TAG COUNT STEPS VALUES     STEPS and VALUES comma-separated, in order
  image TAG COUNT STEPS SIZES      SIZES: WIDTHxHEIGHTxPNG_BYTES per event

  tb_read.py LOGDIR

Exit codes: 0 read, 1 TensorBoard could not read it (it validates the
TFRecord CRCs), 77 skip (tensorboard is not importable by this Python).
"""
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except Exception as e:  # ImportError, or a broken install
    print(f"skip: tensorboard not importable: {e}", file=sys.stderr)
    sys.exit(77)


def main():
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    print("file_version", acc.file_version)
    tags = acc.Tags()
    for tag in sorted(tags.get("scalars", [])):
        events = acc.Scalars(tag)
        print("scalar", tag, len(events), ",".join(str(e.step) for e in events),
              ",".join(repr(e.value) for e in events))
    for tag in sorted(tags.get("images", [])):
        events = acc.Images(tag)
        print("image", tag, len(events), ",".join(str(e.step) for e in events),
              ",".join(f"{e.width}x{e.height}x{len(e.encoded_image_string)}" for e in events))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print(f"tb_read: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
