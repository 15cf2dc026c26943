"""The fake Ollama (tests/support/fake_ollama.py) as a benchmark process whose latency can change while it runs.

    .venv/bin/python bench/fake_llm.py --latency 0.2
    FAKE_OLLAMA_URL=http://127.0.0.1:40123        <- first line on stdout
    latency 0                                      <- commands on stdin, one JSON answer line each
    {"ok": true, "latency_s": 0.0}
    stats
    {"ok": true, "chats": 1000, "max_concurrent_chats": 16, "connections": 16}

It exits when stdin closes (its parent went away).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fake_ollama import FakeOllama


def main() -> None:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with FakeOllama(port=args.port, latency_s=args.latency) as fake:
        print(f"FAKE_OLLAMA_URL={fake.url}", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "latency" and len(words) == 2:
                fake.set_behaviour(fake.behaviour, latency_s=float(words[1]))
                answer: dict[str, object] = {"ok": True, "latency_s": fake.latency_s}
            elif words[0] == "stats":
                answer = {
                    "ok": True,
                    "chats": fake.chat_count,
                    "max_concurrent_chats": fake.max_concurrent_chats,
                    "connections": fake.connections_accepted,
                }
            elif words[0] == "reset-counters":
                latency = fake.latency_s
                fake.reset()
                fake.latency_s = latency
                answer = {"ok": True}
            else:
                answer = {"ok": False, "error": f"unknown command {line.strip()!r}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
