#!/usr/bin/env python3
"""A subscriber written in Python, tested against kvevents-mock-publisher.

Starts the mock engine on free loopback ports, dropping every 7th batch on the way, follows its
stream with pyzmq and msgpack as a gateway would (live PUB socket, lost batches fetched from the
replay socket) and checks that every batch arrived once and in order.

    python3 follow_mock_publisher.py [PATH_TO_kvevents-mock-publisher]

Needs pyzmq and msgpack (Debian: python3-zmq, python3-msgpack). Exit status 0 when it passes.
"""
import json
import subprocess
import sys

import msgpack
import zmq

END_OF_REPLAY = 2**64 - 1
BATCHES = 50


def replay(context, endpoint, start):
    """Yields (seq, payload) for every batch the replay socket holds from `start` on."""
    dealer = context.socket(zmq.DEALER)
    dealer.connect(endpoint)
    dealer.send_multipart([b"", start.to_bytes(8, "big")])
    try:
        while True:
            if not dealer.poll(5000):
                raise TimeoutError("replay did not answer")
            # After the empty delimiter: [topic, seq, payload], or [seq, payload] before vLLM v0.26.
            frames = dealer.recv_multipart()[1:]
            seq = int.from_bytes(frames[-2], "big")
            if seq == END_OF_REPLAY:
                return
            yield seq, frames[-1]
    finally:
        dealer.close()


def main():
    program = sys.argv[1] if len(sys.argv) > 1 else "kvevents-mock-publisher"
    publisher = subprocess.Popen(
        [program, "--endpoint", "tcp://127.0.0.1:*", "--replay", "tcp://127.0.0.1:*",
         "--count", str(BATCHES), "--drop-every", "7", "--rate", "200", "--wait-for-subscriber"],
        stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(publisher.stdout.readline())  # {"event": "ready", "endpoint": ...}
        context = zmq.Context()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(ready["endpoint"])

        received = []  # sequence numbers, in the order the gateway would apply them
        while len(received) < BATCHES:
            if not sub.poll(10000):
                raise TimeoutError(f"no batch after {len(received)}")
            topic, seq_bytes, payload = sub.recv_multipart()
            seq = int.from_bytes(seq_bytes, "big")
            expected = received[-1] + 1 if received else 0
            if seq > expected:  # a gap: fetch what was lost before applying this batch
                for old_seq, old_payload in replay(context, ready["replay_endpoint"], expected):
                    if old_seq >= seq:
                        break
                    msgpack.unpackb(old_payload)
                    received.append(old_seq)
            ts, events, dp_rank = msgpack.unpackb(payload)  # vLLM's [ts, events, dp_rank]
            assert all(event["type"] in ("BlockStored", "BlockRemoved", "AllBlocksCleared")
                       for event in events)
            received.append(seq)

        assert received == list(range(BATCHES)), received
        print(f"OK: {BATCHES} batches in order, gaps healed from replay")
    finally:
        publisher.terminate()
        publisher.wait(10)


if __name__ == "__main__":
    main()
