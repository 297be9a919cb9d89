"""The Renode engine (pyrenode3). ``script`` is pure Python (text generation, testable without Renode);
``engine`` imports pyrenode3 only when availability() finds a Renode to load or a session starts.
The registry imports ``duohil.engines.renode.engine`` directly."""
