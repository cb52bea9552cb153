"""A keyed count in Quix Streams (the Python library a user might pick instead of
Runnel's Streams): reads TOPIC_IN from the beginning, counts per key in its RocksDB
state, writes each count to TOPIC_OUT, and stops once it has counted N records.
Prints the records/s from the start of the application to its stop (which commits).

usage: quix_count.py BOOTSTRAP TOPIC_IN TOPIC_OUT N STATE_DIR
"""
import sys
import time

from quixstreams import Application

bootstrap, topic_in, topic_out, n, state_dir = sys.argv[1:6]
n = int(n)

app = Application(
    broker_address=bootstrap,
    consumer_group=f"quix-count-{int(time.time() * 1000)}",
    auto_offset_reset="earliest",
    state_dir=state_dir,
    commit_interval=1.0,
)
source = app.topic(topic_in, key_deserializer="str", value_deserializer="bytes")
sink = app.topic(topic_out, key_serializer="str", value_serializer="int")

processed = 0


def count(_value, state):
    c = state.get("count", 0) + 1
    state.set("count", c)
    return c


def progress(_value):
    global processed
    processed += 1
    if processed == n:
        app.stop()


sdf = app.dataframe(source)
sdf = sdf.apply(count, stateful=True)
sdf = sdf.update(progress)
sdf.to_topic(sink)

started = time.monotonic()
app.run()
elapsed = time.monotonic() - started
print(f"quix: {processed} records counted in {elapsed:.2f} s: {processed / elapsed:.0f} records/s")
