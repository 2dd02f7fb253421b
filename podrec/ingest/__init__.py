"""Events in: the wire format, Kafka → bronze exactly once, producers, the simulator, log import."""
