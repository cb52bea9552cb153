"""Transactions from Python clients against a running broker (KIP-98).

confluent-kafka's transactional producer commits one transaction and aborts another,
then runs a consume-transform-produce loop with send_offsets_to_transaction;
confluent-kafka and kafka-python read_committed consumers must see exactly the
committed records, read_uncommitted ones every record.

Usage: python transactions.py BOOTSTRAP   (exit status 0 = pass; the reason otherwise)
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
RUN = uuid.uuid4().hex[:8]


def fail(why):
    print(f"FAIL: {why}")
    sys.exit(1)


def create(*names):
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for name, f in admin.create_topics([NewTopic(n, 1, 1) for n in names]).items():
        f.result(20)


def read(topic, isolation, expected, group=None):
    """Values of topic-0 from the beginning, until `expected` or 15 s, then 1 s more."""
    c = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": group or f"reader-{uuid.uuid4().hex}",
        "isolation.level": isolation,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.assign([TopicPartition(topic, 0, 0)])
    out, deadline, extra = [], time.time() + 15, None
    while time.time() < (extra or deadline):
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            out.append(m.value().decode())
        if len(out) >= expected and extra is None:
            extra = time.time() + 1
    c.close()
    return out


def read_kafka_python(topic, expected):
    from kafka import KafkaConsumer, TopicPartition as KTP
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level="read_committed",
                      enable_auto_commit=False, consumer_timeout_ms=2000)
    c.assign([KTP(topic, 0)])
    c.seek_to_beginning()
    out, deadline = [], time.time() + 15
    while len(out) < expected and time.time() < deadline:
        for m in c:
            out.append(m.value.decode())
    for m in c:  # anything more is a failure
        out.append(m.value.decode())
    c.close()
    return out


def producer(txn_id):
    p = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": txn_id})
    p.init_transactions(20)
    return p


def basic():
    topic = f"py-txn-{RUN}"
    create(topic)
    p = producer(f"py-basic-{RUN}")
    for round_, commit in (("a", True), ("b", False)):
        p.begin_transaction()
        for i in range(10):
            p.produce(topic, key=str(i), value=f"{round_}-{i}")
        if commit:
            p.commit_transaction(20)
        else:
            p.flush(20)  # the records reach the log before the abort
            p.abort_transaction(20)
    want = sorted(f"a-{i}" for i in range(10))
    got = sorted(read(topic, "read_committed", 10))
    if got != want:
        fail(f"confluent-kafka read_committed saw {got}, expected {want}")
    got = sorted(read_kafka_python(topic, 10))
    if got != want:
        fail(f"kafka-python read_committed saw {got}, expected {want}")
    everything = read(topic, "read_uncommitted", 20)
    if len(everything) != 20:
        fail(f"read_uncommitted saw {len(everything)} records, expected 20 (10 aborted)")


def consume_transform_produce():
    src, dst, group = f"py-in-{RUN}", f"py-out-{RUN}", f"py-eos-{RUN}"
    create(src, dst)
    plain = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(20):
        plain.produce(src, value=str(i))
    plain.flush(20)
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    c.subscribe([src])
    p = producer(f"py-eos-{RUN}")
    seen, deadline = 0, time.time() + 30
    while seen < 20 and time.time() < deadline:
        msgs = c.consume(10, 1.0)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, value=f"doubled-{int(m.value()) * 2}")
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 20)
        p.commit_transaction(20)
        seen += len(msgs)
    c.close()
    if seen != 20:
        fail(f"the consume-transform-produce loop read {seen} of 20 records")
    got = sorted(read(dst, "read_committed", 20))
    want = sorted(f"doubled-{i * 2}" for i in range(20))
    if got != want:
        fail(f"the output topic holds {got}, expected {want}")
    check = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group})
    committed = check.committed([TopicPartition(src, 0)], 20)[0].offset
    check.close()
    if committed != 20:
        fail(f"the group's committed offset is {committed}, expected 20")


def fenced():
    topic = f"py-fence-{RUN}"
    create(topic)
    txn_id = f"py-fence-{RUN}"
    old = producer(txn_id)
    old.begin_transaction()
    old.produce(topic, value="zombie")
    old.flush(20)
    producer(txn_id)  # the new instance fences the old one
    try:
        old.commit_transaction(20)
        fail("a fenced producer committed its transaction")
    except KafkaException as e:
        if not e.args[0].fatal():
            fail(f"fencing should be a fatal error, got {e}")
    if read(topic, "read_committed", 1):
        fail("a record of the fenced producer's transaction became visible")


for check in (basic, consume_transform_produce, fenced):
    check()
    print(f"PASS {check.__name__}")
